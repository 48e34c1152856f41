// A deliberate breach for the layer check's own test: http may not include config.
#include "config/settings.hpp"
#include "tiles/tile_source.hpp"
