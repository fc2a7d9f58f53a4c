"""Pure monitoring plans: scrape config, rules, dashboards and workloads from each model's SLO."""
