"""CI/CD for models: run a training notebook headless, gate, register, promote, report."""
