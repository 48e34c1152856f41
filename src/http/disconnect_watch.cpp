#include "http/disconnect_watch.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/socket.h>

#include <array>
#include <cerrno>

namespace kachel::http {

namespace asio = boost::asio;

asio::awaitable<void> async_wait_disconnect(asio::ip::tcp::socket& socket) {
    auto [ec] =
        co_await socket.async_wait(asio::ip::tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
    if (!ec) {
        std::array<char, 1> probe{};
        ssize_t const n = ::recv(socket.native_handle(), probe.data(), probe.size(), MSG_PEEK | MSG_DONTWAIT);
        if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
            // Data, not a close: wait until the handler finishes (which cancels this wait).
            asio::steady_timer forever{socket.get_executor(), asio::steady_timer::time_point::max()};
            co_await forever.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }
}

} // namespace kachel::http
