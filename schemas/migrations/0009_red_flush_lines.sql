-- Red-flush by line: each red line records the blue line it takes from, so a line's remaining
-- amount and quantity are known.
ALTER TABLE pending_line ADD COLUMN blue_seq integer;
