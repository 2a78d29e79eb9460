"""The rule types, one module and one class each, registered by name (bot.engine.rule_base)."""
