// kachel: reads the settings, publishes the databases' tables, serves them over HTTP.

#include "app/application.hpp"
#include "config/settings.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
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
