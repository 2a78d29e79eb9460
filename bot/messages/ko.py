"""한국어 메시지 (기본). Keys and placeholders must match en.py."""

MESSAGES: dict[str, str] = {
    "demo.tag": "[모의 데이터]",
    # -- market: names, sessions, the calendar (helper `market`) --
    "market.weekdays": "월 화 수 목 금 토 일",
    "market.moment": "{date}({weekday}) {time}",
    "market.session.pre": "프리마켓",
    "market.session.regular": "정규장",
    "market.session.after": "애프터마켓",
    "market.open": "{session} 진행 중",
    "market.closed": "장 마감 · 다음 개장 {next}",
    "market.closed_unknown": "장 마감",
    "market.real": "실제 시장: {state} (지금 흐르는 체결은 모의 데이터)",
    "market.unlisted": "{code}은(는) 상장 종목이 아닙니다.",
    "market.ambiguous": (
        "'{word}'에 맞는 종목이 여럿입니다: {candidates}. 코드나 전체 이름으로 다시 보내 주세요."
    ),
    "market.unknown": "'{word}'에 맞는 종목이 없습니다. /find 로 찾아보세요.",
    "market.not_a_code": "'{word}'은(는) 종목 코드가 아닙니다 (예: 005930).",
    "market.tag.pre": "[프리]",
    "market.tag.after": "[애프터]",
    "market.tag.other": "[{session}]",
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
}
