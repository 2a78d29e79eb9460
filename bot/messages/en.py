"""English messages (``locale: en``). Keys and placeholders must match ko.py."""

MESSAGES: dict[str, str] = {
    "demo.tag": "[simulated data]",
    # -- charts (/chart, /now, /top, the daily digest) --
    "charts.title": "{stock} program trading · {day}",
    "charts.no_data": "{stock}: no program trading recorded on {day}.",
    "charts.net": "net-buy value",
    "charts.buy": "buy value",
    "charts.sell": "sell value",
    "charts.axis_net": "net-buy value (100M KRW)",
    "charts.axis_trade": "buy / sell value (100M KRW)",
    "charts.axis_whole": "whole net bid remainder (shares)",
    "charts.session.pre": "pre-market",
    "charts.session.regular": "regular",
    "charts.session.after": "after-market",
    "charts.cmd.chart.args": "CODE|NAME [DATE]",
    "charts.cmd.chart.summary": "a stock's program trading chart, today or DATE",
    "charts.cmd.now.args": "CODE|NAME",
    "charts.cmd.now.summary": "a stock's latest program figures (5- and 30-minute change)",
    "charts.cmd.top.args": "[N]",
    "charts.cmd.top.summary": "the watched stocks ranked by today's net buying",
    "charts.cmd.digest.args": "[on|off]",
    "charts.cmd.digest.summary": "turn the daily close summary on or off",
    "charts.no_recording": (
        "{stock}: no recording of {day} (recordings are kept record_keep_days)."
    ),
    "charts.bad_date": "{word}: write the date as 2026-11-23, 20261123 or -1 (a day back).",
    "charts.future_date": "{day} has not come yet.",
    "charts.bad_count": "The count must be between 1 and {most}.",
    "charts.give_stock": "Name a stock, e.g. /chart 005930 or /chart 005930 2026-11-23",
    "charts.off": "Charts are turned off.",
    "charts.caption": "{stock} program trading · {day}",
    "charts.now.head": "{stock} program trading · {time}",
    "charts.now.moved": "5m {five} · 30m {thirty}",
    "charts.now.net_value": "Net-buy value: <b>{value}</b> ({moved})",
    "charts.now.net_qty": "Net-buy volume: {value} ({moved})",
    "charts.now.trade": "Buy · sell value: {buy} · {sell}",
    "charts.now.book": "Buy · sell remainder: {buy} · {sell}",
    "charts.now.whole": "Whole net bid remainder: {value} ({moved})",
    "charts.top.head": "Today's program net buying (30-minute change)",
    "charts.top.row": "{place}. {stock} <b>{value}</b> (30m {thirty})",
    "charts.top.no_data": "{place}. {stock} nothing today",
    "charts.top.empty": "This chat watches no stock. Add one with /watch 005930.",
    "charts.digest.is_on": "📬 This chat gets the daily close summary. /digest off stops it.",
    "charts.digest.is_off": "📭 This chat gets no daily close summary. /digest on starts it.",
    "charts.digest.bad_word": "{word}: write /digest on or /digest off.",
    "charts.digest.unavailable": "The daily summary is turned off in the config (digest.enabled).",
    "charts.digest.head.close": "📊 {day} program trading at the regular close",
    "charts.digest.head.after": "📊 {day} program trading at the after-market close",
    "charts.digest.row": "{place}. {stock} <b>{value}</b> (30m {thirty})",
    "charts.digest.alerts": "Today's alerts by rule:",
    "charts.digest.rule": "• {rule} {count}",
    "charts.digest.no_alerts": "No alerts today.",
    "charts.top_title": "{day} top program net buying",
    # -- korean: times, dates, sessions
    "time.weekdays": "Mon,Tue,Wed,Thu,Fri,Sat,Sun",
    "time.date": "{weekday} {month:02d}/{day:02d}",
    "time.date_year": "{weekday} {year}/{month:02d}/{day:02d}",
    "time.zone": "KST",
    "session.pre": "[pre-market]",
    "session.after": "[after-hours]",
    "session.closed": "[market closed]",
    # -- korean: commands (the menu, /help, usage lines)
    "cmd.help.args": "",
    "cmd.help.summary": "what this bot does and its commands",
    "cmd.start.args": "",
    "cmd.start.summary": "welcome and help",
    "cmd.watch.args": "STOCK [STOCK…]",
    "cmd.watch.summary": "watch stocks: their alerts come to this chat",
    "cmd.unwatch.args": "STOCK [STOCK…]",
    "cmd.unwatch.summary": "stop watching stocks",
    "cmd.list.args": "",
    "cmd.list.summary": "this chat's watched stocks and their state",
    "cmd.alerts.args": "[STOCK] [N]",
    "cmd.alerts.summary": "the last N alerts (default 10), optionally of one stock",
    "cmd.rules.args": "",
    "cmd.rules.summary": "the loaded rules and the last reload error",
    "cmd.mute.args": "RULE|STOCK DURATION",
    "cmd.mute.summary": "silence a rule or a stock for a while",
    "cmd.unmute.args": "[RULE|STOCK]",
    "cmd.unmute.summary": "end one mute, or all of them",
    "cmd.status.args": "",
    "cmd.status.summary": "feed, subscriptions and delivery health",
    "help.intro": (
        "<b>pgmbot</b> watches KIS real-time program trading (프로그램 매매) and alerts you "
        "when your rules fire."
    ),
    "help.command": "<code>{usage}</code> — {summary}",
    "help.notes": (
        "A stock is a 6-character code such as <code>005930</code> or a name such as "
        "<code>삼성전자</code> (/find looks names up). "
        "DURATION is like <code>30m</code>, <code>2h</code>, <code>1d</code>, <code>1h30m</code>. "
        "Rules live in the bot's <code>rules/</code> folder. Times are Korean time (KST)."
    ),
    # -- korean: guard, refusals, failures
    "refusal": (
        "⛔ This bot is private.\n"
        "Your chat id is <code>{chat_id}</code>: ask its owner to add it to "
        "<code>telegram.allowed_chat_ids</code>."
    ),
    "bad_arguments": "⚠️ {problem}\nUsage: <code>{usage}</code>",
    "unknown_command": "Unknown command. /help lists what I can do.",
    "apology": "Sorry, that failed; the admins were told.",
    # -- korean: argument errors (plain text)
    "error.no_arguments": "This command takes no arguments.",
    "error.mute_arguments": "Give what to mute and for how long, e.g. /mute 005930 30m.",
    "error.unmute_arguments": "Give at most one rule or stock.",
    "error.alerts_arguments": "Give at most a stock and a count.",
    "error.not_code": "{word} is not a 6-character stock code such as 005930.",
    "error.no_codes": "Give one or more stock codes, e.g. 005930.",
    "error.too_many_codes": "Give at most {most} codes at once.",
    "error.count_range": "The count must be between 1 and {most}.",
    "error.unit": "Give {word} a unit: {n}m, {n}h or {n}d.",
    "error.duration": "{word} is not a duration: write it like 30m, 2h, 1d or 1h30m.",
    "error.duration_order": "{word}: give each unit once, from days to seconds (1h30m).",
    "error.duration_zero": "The duration must be more than zero.",
    "error.duration_max": "Mute for at most {days} days.",
    "error.not_target": "{word} is neither a loaded rule nor a stock; see /rules.",
    # -- korean: subscriptions, /watch, /unwatch, /list
    "sub.live": "🟢 live",
    "sub.pending": "⏳ subscribing",
    "sub.rejected": "❌ refused by KIS",
    "sub.no_capacity": "🚫 no free subscription slot",
    "sub.not_wanted": "⚪ not subscribed",
    "sub.failed": "⚠️ no answer from KIS (tried again at the next connection)",
    "watch.already": "{line} (already watched)",
    "watch.not_kept": "not kept in this chat's list",
    "watch.error": "❌ {problem}",
    "watch.count": "👀 {kept} of them in this chat's list; /list shows all.",
    "unwatch.removed": "Stopped watching {stocks}",
    "unwatch.missing": "Not watched here: {stocks}",
    "list.empty": "This chat watches nothing yet. Try <code>/watch 005930</code>.",
    "list.header": "👀 Watched here ({count}):",
    # -- korean: alerts, /alerts
    "alert.header": "🔔 <b>{stock}</b> {when} · <code>{rule}</code>",
    "alerts.none": "No alerts yet.",
    "alerts.none_for": "No alerts for <b>{stock}</b> yet.",
    "alerts.header": "Last {count} alert(s), newest last (KST):",
    "alerts.header_for": "Last {count} alert(s) for <b>{stock}</b>, newest last (KST):",
    # -- korean: /rules
    "rules.header": "📜 {count} rule(s) loaded:",
    "rules.none": "No rules loaded.",
    "rules.line": "• {line}",
    "rules.error": "⚠️ Last reload failed:\n<pre>{error}</pre>",
    # -- korean: /mute, /unmute
    "mute.stock": "🔕 Stock <b>{stock}</b> muted here until {until}.",
    "mute.rule": "🔕 Rule <code>{rule}</code> muted here until {until}.",
    "unmute.all": "🔔 {count} mute(s) ended.",
    "unmute.nothing": "No mutes to end.",
    "unmute.not_muted": "<code>{target}</code> was not muted.",
    "unmute.done": "🔔 <code>{target}</code> unmuted.",
    # -- korean: /status
    "status.title": "<b>pgmbot status</b>",
    "status.demo": "⚠️ Simulated data from the built-in simulator, not the real market.",
    "status.connection": "{mark} <b>{account}</b> {subscribed}/{limit} subscribed",
    "status.connection_error": "{line} — {error}",
    "status.no_connection": "🔴 no feed connection",
    "status.subscriptions": "Subscriptions: {used}/{capacity} (wanted: {wanted})",
    "status.ticks": "Ticks: {ticks} (last {ago})",
    "status.bad_frames": "Malformed frames skipped: {count}",
    "status.rules": "Rules loaded: {count}",
    "status.rules_failed": "Rules loaded: {count} — ⚠️ last reload failed, see /rules",
    "status.pending": "Alerts waiting for delivery: {count}",
    "status.blocked": "Chats that blocked the bot: {count}",
    "status.failed": "⚠️ Alerts given up on: {count}",
    "status.last_failure": (
        "Last: <code>{rule}</code> {stock} to chat {chat_id} after {attempts} attempt(s) — {error}"
    ),
    "ago.never": "never",
    "ago.seconds": "{n}s ago",
    "ago.minutes": "{n}m ago",
    "ago.hours": "{n}h ago",
    # -- korean: notices to the admin chats (plain text)
    "kis.no_ack": (
        "KIS {account}: KIS did not answer {attempts} subscribe requests for {ticker}; marked "
        "failed (/list). It is tried again at the next connection."
    ),
    "kis.approval": (
        "KIS {account}: the approval key was refused (HTTP {status}: {said}). Check the "
        "appkey/appsecret settings. Retrying."
    ),
    "kis.in_use": (
        "KIS {account}: this appkey already has another connection ({said}). Check for another "
        "program using the same appkey. Retrying every {delay} s."
    ),
    "notice.handler_failed": "⚠️ pgmbot error{where}: {error}",
    "notice.polling_refused": (
        "⚠️ Telegram refuses the bot token (401): commands go unanswered and alerts wait; "
        "retrying at most {retry:g} s apart."
    ),
    "notice.polling_resumed": (
        "✅ Telegram accepts the bot token again after {seconds:.0f} s of 401; polling resumed."
    ),
    "notice.rules_fixed": "Rule files fixed: {count} rules loaded.",
    "notice.rules_failed": "Rule files have errors; the last good rules keep running:\n{problems}",
    "notice.restart_recovered": (
        "Restart: {recovered} alert(s) fired while the bot was down or missing from the "
        "database were stored as recovered, not sent (too old); {delivered} recent one(s) are "
        "being sent."
    ),
    "notice.chat_moved": (
        "Chat {old} became a supergroup with id {new}: its watches and mutes moved along. "
        "Put {new} in telegram.allowed_chat_ids (or admin_chat_ids) for the next start."
    ),
    "notice.database_gone": (
        "The database file {url} was deleted or replaced while the bot runs: alerts are "
        "written to a file nobody will find. Restart the bot (its rebuild stores today's alerts "
        "again without resending old ones)."
    ),
    "notice.queue_full": (
        "alert queue full: {most} alerts wait for the database; newer ones are kept only in "
        "the recording until a restart stores them"
    ),
    "notice.not_delivered": "alert not delivered to chat {chat_id} ({what}): {reason}",
    # -- resolved events (the ✅ message, and its line in /alerts) --
    "resolved.header": "✅ <b>{stock}</b> {when} · <code>{rule}</code> · resolved",
    "resolved.at": "✅ resolved {when}",
    # -- market: names, sessions, the calendar (helper `market`) --
    "market.session.pre": "pre-market",
    "market.session.regular": "regular session",
    "market.session.after": "after-market",
    "market.open": "{session} under way",
    "market.closed": "market closed · next open {next}",
    "market.closed_unknown": "market closed",
    "market.real": "Real market: {state}",
    "market.unlisted": "{code} is not a listed stock.",
    "market.ambiguous": (
        "{word} fits several stocks: {candidates}. Send the code or the full name."
    ),
    "market.unknown": "No stock fits {word}. Try /find.",
    "market.not_a_code": "{word} is not a stock code (e.g. 005930).",
    "market.halted": "trading halted",
    "market.find.args": "NAME",
    "market.find.summary": "find stocks by name",
    "market.find.empty": "Give a name to look for, e.g. /find 삼성",
    "market.find.none": "No stock fits '{text}'.",
    "market.find.header": "{count} stock(s) for '{text}':",
    "market.find.no_names": (
        "No stock master file is loaded, so names cannot be searched; send codes."
    ),
    "market.notice.no_names": (
        "The stock master files could not be downloaded and no saved copy "
        "exists: running on codes alone, without names."
    ),
    "market.notice.silent": "No trade data since {since} · connections: {connections}",
    "market.notice.flowing": "Trade data flows again (it stopped at {since} for {minutes} min).",
    "market.notice.demo_closed": "Demo: running on simulated data. The real market: {state}",
    "market.connected": "{account} connected",
    "market.disconnected": "{account} disconnected",
    # -- notify: notification control (/mutes, buttons, /quiet, /settings, routing) --
    "cmd.reload.args": "",
    "cmd.reload.summary": "re-read the rule files now (admins)",
    "notify.reloaded": "🔄 Rule files read again.",
    "notify.reload_off": "This bot cannot re-read its rule files.",
    "notify.duration": "{word} is not a duration. Write 30m, 2h, 1d, 30분, 2시간 or today.",
    "notify.cmd.mutes.args": "",
    "notify.cmd.mutes.summary": "this chat's mutes (and when they end)",
    "notify.mutes.none": "No mute is on in this chat.",
    "notify.mutes.header": "🔕 {count} mute(s) · /unmute RULE|CODE ends one, /unmute all",
    "notify.mutes.stock": "• stock <b>{stock}</b> · until {until}",
    "notify.mutes.rule": "• rule <code>{rule}</code> · until {until}",
    "notify.button.mute_stock": "🔕 stock 1h",
    "notify.button.mute_rule": "🔕 rule today",
    "notify.button.chart": "📈 chart",
    "notify.button.muted_stock": "🔕 {stock}: muted until {until}.",
    "notify.button.muted_rule": "🔕 rule {rule}: muted until {until}.",
    "notify.button.chart_sent": "📈 Sending the chart.",
    "notify.button.refused": "This button cannot be used in this chat.",
    "notify.button.stale": "This button no longer works. Use a command instead.",
    "notify.cmd.quiet.args": "[HH:MM-HH:MM|off]",
    "notify.cmd.quiet.summary": "quiet hours: alerts arrive without sound",
    "notify.quiet.on": "🌙 Quiet hours {range} (KST): alerts then arrive without sound.",
    "notify.quiet.none": "No quiet hours. E.g. /quiet 22:00-07:00",
    "notify.quiet.turned_off": "🔔 Quiet hours turned off.",
    "notify.quiet.bad": "{word} is not a range of times. E.g. /quiet 22:00-07:00, /quiet off",
    "notify.cmd.settings.args": "",
    "notify.cmd.settings.summary": "this chat's settings at a glance",
    "notify.settings.header": "⚙️ This chat's settings",
    "notify.settings.locale": "Language: {locale}",
    "notify.settings.quiet": "Quiet hours: {quiet}",
    "notify.settings.mutes": "Mutes: {mutes}",
    "notify.settings.watches": "Watched stocks: {watches}",
    "notify.settings.rules": "Rules received: {rules}",
    "notify.settings.language": "English",
    "notify.settings.none": "none",
    "notify.admin_only": "Only an admin may use this command.",
}
