"""한국어 메시지 (기본). Keys and placeholders must match en.py.

Templates are Telegram HTML: values are escaped by the caller. The ``error.*`` and ``notice.*``
texts are plain (the caller escapes the whole rendered text).
"""

MESSAGES: dict[str, str] = {
    "demo.tag": "[모의 데이터]",
    # -- charts (/chart, /now, /top, the daily digest) --
    "charts.title": "{stock} 프로그램 매매 · {day}",
    "charts.no_data": "{stock}: {day}의 프로그램 매매 기록이 없습니다.",
    "charts.net": "순매수 대금",
    "charts.buy": "매수 대금",
    "charts.sell": "매도 대금",
    "charts.axis_net": "순매수 대금 (억)",
    "charts.axis_trade": "매수·매도 대금 (억)",
    "charts.axis_whole": "전체순매수호가잔량 (주)",
    "charts.session.pre": "프리마켓",
    "charts.session.regular": "정규장",
    "charts.session.after": "애프터마켓",
    "charts.cmd.chart.args": "CODE|NAME [DATE]",
    "charts.cmd.chart.summary": "종목의 오늘(또는 DATE) 프로그램 매매 차트",
    "charts.cmd.now.args": "CODE|NAME",
    "charts.cmd.now.summary": "종목의 최신 프로그램 매매 현황 (5분·30분 변화)",
    "charts.cmd.top.args": "[N]",
    "charts.cmd.top.summary": "지켜보는 종목의 오늘 순매수 순위",
    "charts.cmd.digest.args": "[on|off]",
    "charts.cmd.digest.summary": "장 마감 요약을 켜거나 끄기",
    "charts.no_recording": (
        "{stock}: {day}의 기록 파일이 없습니다 (기록은 record_keep_days 동안 보관됩니다)."
    ),
    "charts.bad_date": "{word}: 날짜는 2026-11-23, 20261123 또는 -1(하루 전)처럼 써 주세요.",
    "charts.future_date": "{day}은(는) 아직 오지 않은 날입니다.",
    "charts.bad_count": "개수는 1에서 {most} 사이로 주세요.",
    "charts.give_stock": "종목을 알려 주세요. 예: /chart 005930 또는 /chart 005930 2026-11-23",
    "charts.off": "차트 기능이 꺼져 있습니다.",
    "charts.caption": "{stock} 프로그램 매매 · {day}",
    "charts.now.head": "{stock} 프로그램 매매 · {time}",
    "charts.now.moved": "5분 {five} · 30분 {thirty}",
    "charts.now.net_value": "순매수 대금: <b>{value}</b> ({moved})",
    "charts.now.net_qty": "순매수 수량: {value} ({moved})",
    "charts.now.trade": "매수·매도 대금: {buy} · {sell}",
    "charts.now.book": "매수·매도 잔량: {buy} · {sell}",
    "charts.now.whole": "전체순매수호가잔량: {value} ({moved})",
    "charts.top.head": "오늘 프로그램 순매수 순위 (30분 변화)",
    "charts.top.row": "{place}. {stock} <b>{value}</b> (30분 {thirty})",
    "charts.top.no_data": "{place}. {stock} 오늘 기록 없음",
    "charts.top.empty": "이 대화방이 지켜보는 종목이 없습니다. /watch 005930 처럼 추가하세요.",
    "charts.digest.is_on": "📬 이 대화방은 장 마감 요약을 받습니다. 끄려면 /digest off",
    "charts.digest.is_off": "📭 이 대화방은 장 마감 요약을 받지 않습니다. 켜려면 /digest on",
    "charts.digest.bad_word": "{word}: /digest on 또는 /digest off 로 써 주세요.",
    "charts.digest.unavailable": "장 마감 요약이 설정에서 꺼져 있습니다 (digest.enabled).",
    "charts.digest.head.close": "📊 {day} 정규장 마감 프로그램 매매 요약",
    "charts.digest.head.after": "📊 {day} 애프터마켓 마감 프로그램 매매 요약",
    "charts.digest.row": "{place}. {stock} <b>{value}</b> (30분 {thirty})",
    "charts.digest.alerts": "오늘의 알림 (규칙별):",
    "charts.digest.rule": "• {rule} {count}건",
    "charts.digest.no_alerts": "오늘은 알림이 없었습니다.",
    "charts.top_title": "{day} 프로그램 순매수 상위 종목",
    # -- korean: times, dates, sessions
    "time.weekdays": "월,화,수,목,금,토,일",
    "time.date": "{month:02d}/{day:02d}({weekday})",
    "time.date_year": "{year}/{month:02d}/{day:02d}({weekday})",
    "time.zone": "KST",
    "session.pre": "[프리]",
    "session.after": "[애프터]",
    "session.closed": "[장외]",
    # -- korean: commands (the menu, /help, usage lines)
    "cmd.help.args": "",
    "cmd.help.summary": "봇 소개와 명령어",
    "cmd.start.args": "",
    "cmd.start.summary": "시작 인사와 도움말",
    "cmd.watch.args": "종목 [종목…]",
    "cmd.watch.summary": "종목 감시: 그 종목의 알림을 이 채팅에서 받습니다",
    "cmd.unwatch.args": "종목 [종목…]",
    "cmd.unwatch.summary": "종목 감시 해제",
    "cmd.list.args": "",
    "cmd.list.summary": "이 채팅이 감시하는 종목과 구독 상태",
    "cmd.alerts.args": "[종목] [개수]",
    "cmd.alerts.summary": "최근 알림 (기본 10건, 최대 50건), 한 종목만 볼 수도 있음",
    "cmd.rules.args": "",
    "cmd.rules.summary": "불러온 규칙과 마지막 다시 읽기 오류",
    "cmd.mute.args": "규칙|종목 기간",
    "cmd.mute.summary": "규칙이나 종목의 알림을 잠시 끄기",
    "cmd.unmute.args": "[규칙|종목]",
    "cmd.unmute.summary": "음소거 하나, 또는 전부 해제",
    "cmd.status.args": "",
    "cmd.status.summary": "시세 연결, 구독, 알림 전달 상태",
    "help.intro": (
        "<b>pgmbot</b>은 한국투자증권(KIS)의 실시간 프로그램 매매 데이터를 지켜보다가 "
        "규칙이 발동하면 알려 드립니다."
    ),
    "help.command": "<code>{usage}</code> — {summary}",
    "help.notes": (
        "종목은 <code>005930</code> 같은 6자리 종목코드나 <code>삼성전자</code> 같은 "
        "종목명입니다 (/find 로 이름을 찾습니다). "
        "기간은 <code>30m</code>(30분), <code>2h</code>(2시간), <code>1d</code>(1일), "
        "<code>1h30m</code>처럼 씁니다. 규칙은 봇의 <code>rules/</code> 폴더에 있습니다. "
        "시각은 모두 한국 시간(KST)입니다."
    ),
    # -- korean: guard, refusals, failures
    "refusal": (
        "⛔ 비공개 봇입니다.\n"
        "이 채팅의 ID는 <code>{chat_id}</code>입니다. 봇 운영자에게 "
        "<code>telegram.allowed_chat_ids</code>에 추가해 달라고 하세요."
    ),
    "bad_arguments": "⚠️ {problem}\n사용법: <code>{usage}</code>",
    "unknown_command": "모르는 명령입니다. /help 에서 명령어를 볼 수 있습니다.",
    "apology": "죄송합니다, 처리하지 못했습니다. 관리자에게 알렸습니다.",
    # -- korean: argument errors (plain text)
    "error.no_arguments": "이 명령은 인자를 받지 않습니다.",
    "error.mute_arguments": "무엇을 얼마 동안 끌지 주세요. 예: /mute 삼성전자 30m",
    "error.unmute_arguments": "규칙이나 종목은 하나만 주세요.",
    "error.alerts_arguments": "종목 하나와 개수 하나까지만 주세요.",
    "error.not_code": "{word}은(는) 005930 같은 6자리 종목코드가 아닙니다.",
    "error.no_codes": "종목을 하나 이상 주세요. 예: 005930",
    "error.too_many_codes": "한 번에 {most}개 종목까지입니다.",
    "error.count_range": "개수는 1부터 {most}까지입니다.",
    "error.unit": "{word}에 단위를 붙이세요: {n}m(분), {n}h(시간), {n}d(일).",
    "error.duration": "{word}은(는) 기간이 아닙니다. 30m, 2h, 1d, 1h30m처럼 쓰세요.",
    "error.duration_order": "{word}: 단위는 한 번씩, 일·시간·분·초 순서로 쓰세요 (1h30m).",
    "error.duration_zero": "기간은 0보다 길어야 합니다.",
    "error.duration_max": "음소거는 최대 {days}일입니다.",
    "error.not_target": "{word}은(는) 불러온 규칙도 종목도 아닙니다. /rules 를 보세요.",
    # -- korean: subscriptions, /watch, /unwatch, /list
    "sub.live": "🟢 실시간 구독 중",
    "sub.pending": "⏳ 구독 요청 중",
    "sub.rejected": "❌ KIS가 거부",
    "sub.no_capacity": "🚫 남은 구독 자리 없음",
    "sub.not_wanted": "⚪ 구독 안 함",
    "sub.failed": "⚠️ KIS 응답 없음 (다음 연결 때 다시 시도)",
    "watch.already": "{line} (이미 감시 중)",
    "watch.not_kept": "이 채팅 목록에 넣지 않았습니다",
    "watch.error": "❌ {problem}",
    "watch.count": "👀 이 채팅 목록에 있는 종목: {kept}개. /list 로 전체를 봅니다.",
    "unwatch.removed": "감시 해제: {stocks}",
    "unwatch.missing": "이 채팅에서 감시하지 않던 종목: {stocks}",
    "list.empty": (
        "이 채팅은 아직 감시하는 종목이 없습니다. <code>/watch 005930</code>처럼 추가하세요."
    ),
    "list.header": "👀 이 채팅의 감시 종목 ({count}개):",
    # -- korean: alerts, /alerts
    "alert.header": "🔔 <b>{stock}</b> {when} · <code>{rule}</code>",
    "alerts.none": "아직 알림이 없습니다.",
    "alerts.none_for": "<b>{stock}</b> 알림이 아직 없습니다.",
    "alerts.header": "최근 알림 {count}건 (KST, 오래된 것부터):",
    "alerts.header_for": "<b>{stock}</b> 최근 알림 {count}건 (KST, 오래된 것부터):",
    # -- korean: /rules
    "rules.header": "📜 불러온 규칙 {count}개:",
    "rules.none": "불러온 규칙이 없습니다.",
    "rules.line": "• {line}",
    "rules.error": "⚠️ 마지막 다시 읽기 실패:\n<pre>{error}</pre>",
    # -- korean: /mute, /unmute
    "mute.stock": "🔕 이 채팅에서 종목 <b>{stock}</b>의 알림을 {until}까지 끕니다.",
    "mute.rule": "🔕 이 채팅에서 규칙 <code>{rule}</code>의 알림을 {until}까지 끕니다.",
    "unmute.all": "🔔 음소거 {count}개를 해제했습니다.",
    "unmute.nothing": "해제할 음소거가 없습니다.",
    "unmute.not_muted": "<code>{target}</code>은(는) 음소거 상태가 아니었습니다.",
    "unmute.done": "🔔 <code>{target}</code> 음소거를 해제했습니다.",
    # -- korean: /status
    "status.title": "<b>pgmbot 상태</b>",
    "status.demo": "⚠️ 내장 시뮬레이터의 모의 데이터입니다. 실제 시세가 아닙니다.",
    "status.connection": "{mark} <b>{account}</b> {subscribed}/{limit} 구독",
    "status.connection_error": "{line} — {error}",
    "status.no_connection": "🔴 시세 연결 없음",
    "status.subscriptions": "구독: {used}/{capacity} (요청: {wanted})",
    "status.ticks": "체결 데이터: {ticks}건 (마지막: {ago})",
    "status.bad_frames": "건너뛴 잘못된 프레임: {count}",
    "status.rules": "불러온 규칙: {count}",
    "status.rules_failed": "불러온 규칙: {count} — ⚠️ 마지막 다시 읽기 실패, /rules 참고",
    "status.pending": "전달 대기 중인 알림: {count}",
    "status.blocked": "봇을 차단한 채팅: {count}",
    "status.failed": "⚠️ 전달을 포기한 알림: {count}",
    "status.last_failure": (
        "마지막: <code>{rule}</code> {stock} → 채팅 {chat_id}, {attempts}회 시도 후 — {error}"
    ),
    "ago.never": "없음",
    "ago.seconds": "{n}초 전",
    "ago.minutes": "{n}분 전",
    "ago.hours": "{n}시간 전",
    # -- korean: notices to the admin chats (plain text)
    "kis.no_ack": (
        "KIS {account}: {ticker} 구독 요청 {attempts}번에 KIS가 답하지 않아 실패로 표시했습니다 "
        "(/list). 다음 접속 때 다시 시도합니다."
    ),
    "kis.approval": (
        "KIS {account}: 승인키 발급이 거부되었습니다 (HTTP {status}: {said}). "
        "appkey/appsecret 설정을 확인해 주세요. 계속 재시도합니다."
    ),
    "kis.in_use": (
        "KIS {account}: 이 appkey로 이미 다른 접속이 있습니다 ({said}). 같은 appkey를 쓰는 "
        "다른 프로그램을 확인해 주세요. {delay}초마다 다시 시도합니다."
    ),
    "notice.handler_failed": "⚠️ pgmbot 오류{where}: {error}",
    "notice.polling_refused": (
        "⚠️ 텔레그램이 봇 토큰을 거부합니다 (401): 명령을 받지 못하고, 알림은 저장된 채 "
        "기다립니다. 최대 {retry:g}초 간격으로 다시 시도합니다."
    ),
    "notice.polling_resumed": (
        "✅ 텔레그램 연결이 돌아왔습니다: {seconds:.0f}초 동안 봇 토큰이 거부되었습니다 (401)."
    ),
    "notice.rules_fixed": "규칙 파일이 고쳐졌습니다: 규칙 {count}개를 불러왔습니다.",
    "notice.rules_failed": (
        "규칙 파일에 오류가 있습니다. 마지막으로 정상이던 규칙이 계속 동작합니다:\n{problems}"
    ),
    "notice.restart_recovered": (
        "재시작: 봇이 멈춘 동안 발동했거나 데이터베이스에 없던 알림 {recovered}건은 오래되어 "
        "보내지 않고 recovered로 저장했습니다. 최근 알림 {delivered}건은 보내는 중입니다."
    ),
    "notice.chat_moved": (
        "채팅 {old}이(가) 슈퍼그룹이 되어 ID가 {new}(으)로 바뀌었습니다. 감시 종목과 음소거도 "
        "옮겼습니다. 다음 시작을 위해 telegram.allowed_chat_ids(또는 admin_chat_ids)에 "
        "{new}을(를) 넣으세요."
    ),
    "notice.database_gone": (
        "데이터베이스 파일 {url}이(가) 실행 중에 지워지거나 바뀌었습니다. 알림이 아무도 찾지 "
        "못할 파일에 기록됩니다. 봇을 다시 시작하세요 (다시 만들기가 오늘의 알림을 옛 알림 "
        "재전송 없이 다시 저장합니다)."
    ),
    "notice.queue_full": (
        "알림 대기열이 가득 찼습니다: 알림 {most}건이 데이터베이스를 기다립니다. 그 뒤의 알림은 "
        "재시작 때 저장될 때까지 기록 파일에만 남습니다."
    ),
    "notice.not_delivered": "채팅 {chat_id}에 알림을 전달하지 못했습니다 ({what}): {reason}",
    # -- resolved events (the ✅ message, and its line in /alerts) --
    "resolved.header": "✅ <b>{stock}</b> {when} · <code>{rule}</code> · 해제",
    "resolved.at": "✅ {when} 해제",
    # -- market: names, sessions, the calendar (helper `market`) --
    "market.session.pre": "프리마켓",
    "market.session.regular": "정규장",
    "market.session.after": "애프터마켓",
    "market.open": "{session} 진행 중",
    "market.closed": "장 마감 · 다음 개장 {next}",
    "market.closed_unknown": "장 마감",
    "market.real": "실제 시장: {state}",
    "market.unlisted": "{code}은(는) 상장 종목이 아닙니다.",
    "market.ambiguous": (
        "{word}에 맞는 종목이 여럿입니다: {candidates}. 코드나 전체 이름으로 다시 보내 주세요."
    ),
    "market.unknown": "{word}에 맞는 종목이 없습니다. /find 로 찾아보세요.",
    "market.not_a_code": "{word}은(는) 종목 코드가 아닙니다 (예: 005930).",
    "market.halted": "거래정지",
    "market.find.args": "이름",
    "market.find.summary": "종목 이름으로 찾기",
    "market.find.empty": "찾을 이름을 주세요. 예: /find 삼성",
    "market.find.none": "'{text}'에 맞는 종목이 없습니다.",
    "market.find.header": "'{text}' 검색 결과 {count}개:",
    "market.find.no_names": (
        "종목 마스터 파일이 없어 이름으로 찾을 수 없습니다. 종목 코드로 보내 주세요."
    ),
    "market.notice.no_names": (
        "종목 마스터 파일을 받지 못했고 저장된 사본도 없습니다: 종목 이름 없이 코드로만 "
        "동작합니다."
    ),
    "market.notice.silent": "{since} 이후 체결 데이터 없음 · 연결 상태: {connections}",
    "market.notice.flowing": "체결 데이터가 다시 들어옵니다 ({since}부터 {minutes}분간 끊김).",
    "market.notice.demo_closed": "데모: 모의 데이터로 동작합니다. 실제 시장은 {state}",
    "market.connected": "{account} 연결됨",
    "market.disconnected": "{account} 끊김",
    # -- notify: notification control (/mutes, buttons, /quiet, /settings, routing) --
    "cmd.reload.args": "",
    "cmd.reload.summary": "규칙 파일을 지금 다시 읽기 (관리자)",
    "notify.reloaded": "🔄 규칙 파일을 다시 읽었습니다.",
    "notify.reload_off": "이 봇은 규칙 파일을 다시 읽을 수 없습니다.",
    "notify.duration": (
        "{word}은(는) 기간이 아닙니다. 30m, 2h, 1d, 30분, 2시간, 오늘처럼 쓰세요."
    ),
    "notify.cmd.mutes.args": "",
    "notify.cmd.mutes.summary": "이 채팅의 음소거 목록 (끝나는 시각)",
    "notify.mutes.none": "이 채팅에 켜진 음소거가 없습니다.",
    "notify.mutes.header": "🔕 음소거 {count}개 (해제: /unmute 규칙|종목, 전부는 /unmute)",
    "notify.mutes.stock": "• 종목 <b>{stock}</b> · {until}까지",
    "notify.mutes.rule": "• 규칙 <code>{rule}</code> · {until}까지",
    "notify.button.mute_stock": "🔕 이 종목 1시간",
    "notify.button.mute_rule": "🔕 이 규칙 오늘",
    "notify.button.chart": "📈 차트",
    "notify.button.muted_stock": "🔕 {stock}: {until}까지 알림을 끕니다.",
    "notify.button.muted_rule": "🔕 규칙 {rule}: {until}까지 알림을 끕니다.",
    "notify.button.chart_sent": "📈 차트를 보냅니다.",
    "notify.button.refused": "이 채팅에서는 쓸 수 없는 버튼입니다.",
    "notify.button.stale": "더 이상 쓸 수 없는 버튼입니다. 명령으로 해 주세요.",
    "notify.cmd.quiet.args": "[HH:MM-HH:MM|off]",
    "notify.cmd.quiet.summary": "조용한 시간: 그동안 알림을 소리 없이 받기",
    "notify.quiet.on": "🌙 조용한 시간 {range} (KST): 이 시간의 알림은 소리 없이 옵니다.",
    "notify.quiet.none": "조용한 시간이 없습니다. 예: /quiet 22:00-07:00",
    "notify.quiet.turned_off": "🔔 조용한 시간을 껐습니다.",
    "notify.quiet.bad": ("{word}은(는) 시간 범위가 아닙니다. 예: /quiet 22:00-07:00, /quiet off"),
    "notify.cmd.settings.args": "",
    "notify.cmd.settings.summary": "이 채팅의 설정 한눈에",
    "notify.settings.header": "⚙️ 이 채팅의 설정",
    "notify.settings.locale": "언어: {locale}",
    "notify.settings.quiet": "조용한 시간: {quiet}",
    "notify.settings.mutes": "음소거: {mutes}",
    "notify.settings.watches": "감시 종목: {watches}",
    "notify.settings.rules": "받는 규칙: {rules}",
    "notify.settings.language": "한국어",
    "notify.settings.none": "없음",
    "notify.admin_only": "관리자만 쓸 수 있는 명령입니다.",
}
