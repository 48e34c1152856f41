#include "pg/cancel.hpp"

#include "core/text.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <memory>
#include <thread>
#include <tuple>

namespace kachel::pg {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

/// What the thread shares with the coroutine waiting for it, which may stop waiting (and go
/// away) before the call returns. The thread reports through a thread-safe channel with room for
/// its one message, so the report is never lost, whether it comes before or after the wait.
struct cancel_call {
    cancel_call(asio::any_io_executor const& executor, cancel_handle c)
        : done(executor, 1), cancel(std::move(c)) {}

    asio::experimental::concurrent_channel<void(boost::system::error_code)> done;
    cancel_handle cancel;
    std::string error; ///< written before `done` is sent to
};

} // namespace

asio::awaitable<cancel_outcome> async_send_cancel(cancel_handle cancel,
                                                  std::chrono::steady_clock::time_point deadline) {
    if (!cancel) {
        co_return cancel_outcome{false, "libpq has no cancel key for this connection"};
    }
    auto const executor = co_await asio::this_coro::executor;
    auto call = std::make_shared<cancel_call>(executor, std::move(cancel));
    std::thread{[call] {
        std::array<char, 256> error{};
        if (PQcancel(call->cancel.get(), error.data(), static_cast<int>(error.size())) != 1) {
            call->error = std::string{trim(error.data())};
            if (call->error.empty()) {
                call->error = "the cancel request failed";
            }
        }
        std::ignore = call->done.try_send(boost::system::error_code{});
    }}.detach();
    asio::steady_timer timer{executor, deadline};
    auto const answered = co_await (call->done.async_receive(asio::as_tuple(asio::use_awaitable)) ||
                                    timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (answered.index() == 1) {
        co_return cancel_outcome{false, "the server did not answer in time"};
    }
    co_return cancel_outcome{true, call->error};
}

} // namespace kachel::pg
