"""Work and money: points for work, the ledger, shifts, periods and their close, and each member's share."""
