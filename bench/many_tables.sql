-- 1,000 small spatial tables in schema "many" (10 points and a primary key each), never analysed,
-- as tables look just after a load, for the startup measurement of bench/run. Autovacuum leaves
-- them alone too: 10 rows are below its analyse threshold of 50. Every second table has a GiST
-- index, from which PostGIS's ST_EstimatedExtent reads the extent without statistics; the others
-- have nothing to estimate from, so kachel computes their extents exactly.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS many CASCADE;
CREATE SCHEMA many;
DO $$
BEGIN
  FOR i IN 1..1000 LOOP
    EXECUTE format('CREATE TABLE many.%I (id integer PRIMARY KEY, name text, geom geometry(Point, 4326))',
                   'layer_' || lpad(i::text, 4, '0'));
    EXECUTE format('INSERT INTO many.%I SELECT g, %L || g, ST_SetSRID(ST_MakePoint(%s + g * 0.01, %s + g * 0.01), 4326) '
                   'FROM generate_series(1, 10) AS g',
                   'layer_' || lpad(i::text, 4, '0'), 'feature ', -10 + (i % 40), 36 + (i / 40));
    IF i % 2 = 0 THEN
      EXECUTE format('CREATE INDEX ON many.%I USING gist (geom)', 'layer_' || lpad(i::text, 4, '0'));
    END IF;
  END LOOP;
END
$$;
