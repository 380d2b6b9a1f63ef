"""The SOR-sequence family (Khodak, Chow, Balcan, Talwalkar, "Learning to Relax", ICLR 2024)."""
