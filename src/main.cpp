// kachel: reads the settings, publishes the databases' tables, serves them over HTTP.

#include "app/application.hpp"
#include "config/settings.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

#include <spdlog/spdlog.h>

#include <malloc.h>

namespace {

/// Tiles of up to a few MB are allocated and freed at the request rate. With glibc's defaults
/// such a buffer is a fresh mapping, or memory handed back to the kernel after each free, so
/// every tile costs page faults and zeroed pages (measured: 0.7 to 1.5 faults per archive tile,
/// a sixth of the CPU). Fixed thresholds keep those buffers in the heap for reuse; memory held
/// back stays below a few MB per arena.
void keep_tile_buffers_in_heap() noexcept {
    constexpr int mapped_above = 4 << 20;         // bytes: larger blocks get their own mapping
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
    } catch (kachel::error const& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
    kachel::app::application app{std::move(settings)};
    return app.run();
}
