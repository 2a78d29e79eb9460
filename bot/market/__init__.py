"""The market pgmbot serves: trading sessions, the calendar, the listed stocks and their names."""
