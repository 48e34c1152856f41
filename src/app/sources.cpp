#include "app/sources.hpp"

namespace kachel::app {

boost::asio::awaitable<std::vector<postgis::published_database>>
async_publish_databases(config::settings const& settings, boost::asio::any_io_executor executor,
                        tiles::id_resolver& ids, tiles::catalog& catalog, postgis::readiness& ready) {
    std::vector<postgis::published_database> published;
    for (std::size_t i = 0; i < settings.postgres.size(); ++i) {
        auto params = settings.connect_params_for(i);
        auto options = settings.pool_options_for(i, params.application_name);
        auto const publish = settings.publish_config_for(i);
        published.push_back(co_await postgis::async_publish_database(
            executor, std::move(params), std::move(options), settings.retry_timeout_for(i), publish, ids,
            catalog, &ready));
    }
    co_return published;
}

} // namespace kachel::app
