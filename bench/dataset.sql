-- kachel benchmark dataset, schema "bench": 1,000,000 points, 200,000 polygons and 200,000
-- linestrings in EPSG:4326 over Europe, clustered around 400 towns whose sizes fall off as in a
-- real settlement pattern, with a thinner scatter over the countryside. Deterministic: one seed,
-- no parallel workers, and every random draw made in a fixed row order (MATERIALIZED), so two
-- runs build identical tables. Run with psql -v ON_ERROR_STOP=1 as the owner of the database.
SET max_parallel_workers_per_gather = 0;
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
DO $$ BEGIN PERFORM setseed(0.2026); END $$;

-- Towns: position, and a spread (degrees of latitude) that shrinks with the rank.
CREATE TABLE bench.towns AS
SELECT i AS id, -9.5 + 39 * random() AS lon, 36.5 + 23 * random() AS lat, 0.02 + 0.30 / sqrt(i) AS sigma
FROM generate_series(1, 400) AS i;

-- A town drawn log-uniformly over the ranks: the first towns are much bigger than the last.
CREATE FUNCTION bench.pick_town(u double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT least(400, floor(exp(u * ln(401)))::integer) $$;

-- A normally distributed offset (Box-Muller) around a town, in degrees, longitude widened by
-- the latitude so that clusters are round on the ground.
CREATE FUNCTION bench.scatter(t bench.towns, u1 double precision, u2 double precision, spread double precision)
RETURNS geometry LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ST_SetSRID(ST_MakePoint(
    t.lon + spread * t.sigma * sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2) / cos(radians(t.lat)),
    t.lat + spread * t.sigma * sqrt(-2 * ln(1 - u1)) * sin(2 * pi() * u2)), 4326)
$$;

-- Points of interest: 85 % around towns, 15 % over the whole area.
CREATE TABLE bench.points AS
WITH draws AS MATERIALIZED (
  SELECT n, random() AS u0, random() AS u1, random() AS u2, random() AS u3, random() AS u4, random() AS u5
  FROM generate_series(1, 1000000) AS n
)
SELECT d.n::bigint AS id,
       CASE WHEN d.u0 < 0.15
            THEN ST_SetSRID(ST_MakePoint(-9.5 + 39 * d.u1, 36.5 + 23 * d.u2), 4326)
            ELSE bench.scatter(t, d.u1, d.u2, 1) END AS geom,
       (ARRAY['shop', 'restaurant', 'cafe', 'school', 'bus_stop', 'bench', 'post_box', 'pharmacy',
              'fuel', 'bank'])[1 + floor(d.u3 * 10)::integer] AS kind,
       'poi ' || d.n AS name,
       floor(d.u4 * 100)::integer AS rank,
       round((d.u5 * 1200)::numeric, 1)::real AS elevation
FROM draws d JOIN bench.towns t ON t.id = bench.pick_town(greatest(d.u0 - 0.15, 0) / 0.85);

-- Buildings (95 %: rotated rectangles of 8 to 60 m) and land-use areas (5 %: octagons of
-- 150 to 1,500 m), nearer the town centres than the points.
CREATE TABLE bench.polygons AS
WITH draws AS MATERIALIZED (
  SELECT n, random() AS u0, random() AS u1, random() AS u2, random() AS u3, random() AS u4, random() AS u5
  FROM generate_series(1, 200000) AS n
), placed AS (
  SELECT d.*, bench.scatter(t, d.u1, d.u2, 0.6) AS centre, cos(radians(t.lat)) AS coslat
  FROM draws d JOIN bench.towns t ON t.id = bench.pick_town(d.u0)
)
SELECT n::bigint AS id,
       CASE WHEN u5 < 0.95
            THEN ST_Rotate(ST_MakeEnvelope(ST_X(centre) - (4 + 26 * u3) / 111320 / coslat,
                                           ST_Y(centre) - (4 + 26 * u4) / 111320,
                                           ST_X(centre) + (4 + 26 * u3) / 111320 / coslat,
                                           ST_Y(centre) + (4 + 26 * u4) / 111320, 4326),
                           u3 * pi(), centre)
            ELSE ST_Buffer(centre, (150 + 1350 * u4) / 111320, 2) END AS geom,
       CASE WHEN u5 < 0.95 THEN (ARRAY['house', 'apartments', 'retail', 'industrial', 'garage'])[1 + floor(u4 * 5)::integer]
            ELSE (ARRAY['park', 'forest', 'farmland', 'residential'])[1 + floor(u3 * 4)::integer] END AS kind,
       1 + floor(u4 * 12)::integer AS levels
FROM placed;

-- Roads: random walks of 2 to 12 vertices, 40 to 400 m apart, starting around the towns.
CREATE TABLE bench.lines AS
WITH starts AS MATERIALIZED (
  SELECT n, random() AS u0, random() AS u1, random() AS u2, 2 + floor(random() * 11)::integer AS vertices,
         40 + 360 * random() AS step, 2 * pi() * random() AS heading, random() AS u3
  FROM generate_series(1, 200000) AS n
), turns AS MATERIALIZED (
  SELECT s.n, k, random() - 0.5 AS turn FROM starts s, generate_series(1, s.vertices) AS k
), headed AS (
  SELECT n, k, sum(turn) OVER (PARTITION BY n ORDER BY k) AS bend FROM turns
), walked AS (
  SELECT h.n, h.k, s.step, s.heading + 0.9 * h.bend AS dir, s.u0, s.u1, s.u2, s.u3 FROM headed h JOIN starts s USING (n)
), offsets AS (
  SELECT n, k, u0, u1, u2, u3,
         sum(CASE WHEN k = 1 THEN 0 ELSE step * cos(dir) END) OVER (PARTITION BY n ORDER BY k) AS dx,
         sum(CASE WHEN k = 1 THEN 0 ELSE step * sin(dir) END) OVER (PARTITION BY n ORDER BY k) AS dy
  FROM walked
), placed AS (
  SELECT o.*, bench.scatter(t, o.u1, o.u2, 0.8) AS origin, cos(radians(t.lat)) AS coslat
  FROM offsets o JOIN bench.towns t ON t.id = bench.pick_town(o.u0)
)
SELECT n::bigint AS id,
       ST_MakeLine(array_agg(ST_Translate(origin, dx / 111320 / coslat, dy / 111320) ORDER BY k)) AS geom,
       (ARRAY['residential', 'residential', 'service', 'tertiary', 'secondary', 'primary'])[1 + floor(min(u3) * 6)::integer] AS class,
       'road ' || n AS name
FROM placed GROUP BY n;

DROP FUNCTION bench.scatter(bench.towns, double precision, double precision, double precision);
DROP FUNCTION bench.pick_town(double precision);
DROP TABLE bench.towns;

ALTER TABLE bench.points ADD PRIMARY KEY (id);
ALTER TABLE bench.polygons ADD PRIMARY KEY (id);
ALTER TABLE bench.lines ADD PRIMARY KEY (id);
ALTER TABLE bench.points ALTER COLUMN geom TYPE geometry(Point, 4326);
ALTER TABLE bench.polygons ALTER COLUMN geom TYPE geometry(Polygon, 4326);
ALTER TABLE bench.lines ALTER COLUMN geom TYPE geometry(LineString, 4326);
CREATE INDEX ON bench.points USING gist (geom);
CREATE INDEX ON bench.polygons USING gist (geom);
CREATE INDEX ON bench.lines USING gist (geom);
ANALYZE bench.points;
ANALYZE bench.polygons;
ANALYZE bench.lines;
