"""pgmbot: Telegram alerts on KIS real-time program-trading figures, driven by YAML rules."""

__version__ = "0.1.0"
