#pragma once

#include "config/copy_options.hpp"
#include "config/settings.hpp"

namespace kachel::app {

/// kachel-cp: publishes the sources of `settings` as the server would, then makes every tile of
/// `options`' area and zooms through them (as the server answers it, in the chosen encoding),
/// several at once, and writes the non-empty ones into an MBTiles or PMTiles archive. Shows
/// progress on stderr and a summary on stdout. SIGINT/SIGTERM cancel the running statements; an
/// MBTiles file then keeps every tile written so far (resumable with `--on-duplicate ignore`), a
/// PMTiles archive is not written.
/// \returns the process exit status: 0 when done, 1 after a failure (logged), 130 when interrupted
[[nodiscard]] int run_copy(config::settings settings, config::copy_options options);

} // namespace kachel::app
