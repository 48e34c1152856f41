#pragma once

#include "tiles/tile_source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace kachel::tiles {

/// Runs `read` (a call that may block on a disk) on `blocking`, a thread pool, and resumes the
/// caller on its own executor with the result: an event loop never waits for the disk.
template <class TRead>
boost::asio::awaitable<tile_result> read_blocking(boost::asio::any_io_executor const& blocking, TRead read) {
    co_return co_await boost::asio::co_spawn(
        blocking, [read = std::move(read)]() -> boost::asio::awaitable<tile_result> { co_return read(); },
        boost::asio::use_awaitable);
}

} // namespace kachel::tiles
