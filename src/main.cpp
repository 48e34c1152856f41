// kachel: reads the settings, publishes the databases' tables, serves them over HTTP.

#include "app/application.hpp"
#include "config/settings.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

#include <spdlog/spdlog.h>

#include <malloc.h>

namespace {

/// Tiles of up to several MB are allocated and freed at the request rate. With glibc's defaults
/// a buffer above its learnt threshold is a fresh mapping, and memory freed at a heap's top goes
/// back to the kernel, so such tiles cost page faults and zeroed pages each time (measured on
/// bench/run's MBTiles tiles, median 12 KB, largest 4.4 MB: 16 faults per request with a 4 MiB
/// threshold, none with these). The cost: up to 32 MB kept free per heap after a load (kachel's
/// anonymous memory after 6 s of those tiles: 74 MB, against 42 MB).
void keep_tile_buffers_in_heap() noexcept {
    constexpr int mapped_above = 16 << 20;        // bytes: larger blocks get their own mapping
    constexpr int kept_at_top = 2 * mapped_above; // bytes free at a heap's top before it shrinks
    mallopt(M_MMAP_THRESHOLD, mapped_above);
    mallopt(M_TRIM_THRESHOLD, kept_at_top);
}

} // namespace

int main(int argc, char** argv) {
    keep_tile_buffers_in_heap();
    kachel::config::settings settings;
    try {
        kachel::init_logging();
        auto cli = kachel::config::parse_command_line(argc, argv);
        if (cli.exit_code) {
            return *cli.exit_code;
        }
        settings = std::move(cli.values);
        if (settings.print_change_triggers || settings.save_config == "-") {
            kachel::init_logging(true); // stdout is for the SQL or the configuration
        }
    } catch (kachel::error const& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
    kachel::app::application app{std::move(settings)};
    return app.run();
}
