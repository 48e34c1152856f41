-- The benchmark's fixed tile list: at each zoom from 6 to 14, the tiles holding 12 points picked
-- by a fixed stride through the ids, so that busy areas come up as often as map users ask
-- for them. Prints "z x y" lines, zoom by zoom; a tile can come up more than once.
WITH picks AS (
  SELECT z, k, 1 + ((k * 104729 + z * 7919) % 1000000) AS id
  FROM generate_series(6, 14) AS z, generate_series(1, 12) AS k
), mercator AS (
  SELECT p.z, p.k, ST_Transform(pt.geom, 3857) AS g, 40075016.685578488 / 2 ^ p.z AS span
  FROM picks p JOIN bench.points pt USING (id)
)
SELECT format('%s %s %s', z, floor((ST_X(g) + 20037508.342789244) / span)::integer,
              floor((20037508.342789244 - ST_Y(g)) / span)::integer)
FROM mercator ORDER BY z, k;
