-- Reconciliation export: text that would start a formula in a spreadsheet (= + - @ tab CR) gets
-- a leading apostrophe, in SQL, so the xlsx and the CSV carry the same inert text. Text that is
-- a plain number (a negative amount typed as text, "-5") is left alone.
CREATE FUNCTION neutralize(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN t IS NULL OR t = '' THEN t
        WHEN left(t, 1) IN ('=', '+', '-', '@', E'\t', E'\r') AND t !~ '^[+-]?[0-9]+(\.[0-9]+)?$' THEN '''' || t
        ELSE t
    END
$$;
