"""Error-budget arithmetic shared by the SLO config and the alert rules made from it."""

# Multi-window burn-rate factors (Google SRE workbook, ch. 5): 14.4x spends 2% of a 30-day budget
# in one hour, 6x spends 5% in six hours.
FAST_BURN = 14.4
SLOW_BURN = 6.0
# A budget so large that 14.4x of it exceeds 100% could never page, so SLO targets are bounded.
MAX_BUDGET_PERCENT = round(100 / FAST_BURN, 2)  # 6.94
MIN_AVAILABILITY_PERCENT = round(100 - MAX_BUDGET_PERCENT, 2)  # 93.06
