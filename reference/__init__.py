"""Reference data: the price catalog (shipped with genai-prices) and the CSV files beside this module
that people edit (price overrides, org time zones, budgets), checked whole, then written to schema reference."""
