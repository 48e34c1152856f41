// kachel-cp: copies tiles from the sources kachel serves into an MBTiles or PMTiles archive.

#include "app/copier.hpp"
#include "app/inspect.hpp"
#include "config/copy_options.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
    kachel::config::copy_command_line cli;
    try {
        kachel::init_logging();
        cli = kachel::config::parse_copy_command_line(argc, argv);
        if (cli.exit_code) {
            return *cli.exit_code;
        }
    } catch (kachel::error const& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
    if (cli.copy.inspect) {
        return kachel::app::inspect_archive(*cli.copy.inspect, stdout);
    }
    return kachel::app::run_copy(std::move(cli.values), std::move(cli.copy));
}
