#pragma once

#include "tiles/tile_source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace kachel::tiles {

/// The completion token for awaiting work co_spawned onto another executor: use_awaitable
/// without the caller's cancellation slot. A cancellation (the client went away) is not passed
/// on: Asio 1.81's co_spawn posts it to the other executor, where it may run after the work has
/// finished and its state is gone (a crash seen under load). A disk read cannot be interrupted
/// anyway; the caller drops the result.
inline auto uncancellable() {
    return boost::asio::bind_cancellation_slot(boost::asio::cancellation_slot{}, boost::asio::use_awaitable);
}

/// Runs `read` (a call that may block on a disk) on `blocking`, a thread pool, and resumes the
/// caller on its own executor with the result: an event loop never waits for the disk.
template <class TRead>
boost::asio::awaitable<tile_result> read_blocking(boost::asio::any_io_executor const& blocking, TRead read) {
    co_return co_await boost::asio::co_spawn(
        blocking, [read = std::move(read)]() -> boost::asio::awaitable<tile_result> { co_return read(); },
        uncancellable());
}

} // namespace kachel::tiles
