-- Demo schema: world countries (polygons) and populated places (points), both EPSG:4326.
CREATE TABLE countries (
    id serial PRIMARY KEY,
    iso_a3 text NOT NULL,
    name text,
    geom geometry(MultiPolygon, 4326) NOT NULL
);
CREATE TABLE cities (
    id serial PRIMARY KEY,
    name text NOT NULL,
    country_code text NOT NULL,
    country text NOT NULL,
    admin1 text,
    population integer,
    geom geometry(Point, 4326) NOT NULL
);
CREATE TEMP TABLE countries_raw (iso_a3 text, geometry text);
CREATE TEMP TABLE cities_raw (name text, country_code text, country text, admin1 text, lon float8, lat float8,
                               population integer);
