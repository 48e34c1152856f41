#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <future>
#include <list>
#include <memory>
#include <thread>
#include <vector>

namespace kachel::test {

/// A TCP proxy on 127.0.0.1 in front of another local port, standing in for a network path
/// that can go silent: in blackhole mode it accepts connections and reads what arrives but
/// forwards nothing in either direction and never closes anything, so both ends see a peer that
/// simply stops answering. heal() forwards new connections again; the ones that lived through
/// the blackhole stay silent for ever, as after a stateful firewall lost their state and drops
/// their packets without a reset.
class tcp_proxy {
  public:
    explicit tcp_proxy(unsigned short upstream_port)
        : m_upstream{boost::asio::ip::make_address("127.0.0.1"), upstream_port},
          m_acceptor{m_ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}} {
        boost::asio::co_spawn(m_ioc, accept_loop(), boost::asio::detached);
        m_thread = std::thread{[this] { m_ioc.run(); }};
    }
    tcp_proxy(tcp_proxy const&) = delete;
    tcp_proxy& operator=(tcp_proxy const&) = delete;
    ~tcp_proxy() {
        std::promise<void> done;
        boost::asio::post(m_ioc, [this, &done] {
            boost::system::error_code ignored;
            m_acceptor.close(ignored);
            close_all();
            done.set_value();
        });
        done.get_future().wait();
        m_ioc.stop();
        m_thread.join();
    }

    [[nodiscard]] unsigned short port() const { return m_acceptor.local_endpoint().port(); }

    /// Every current and new connection goes silent.
    void blackhole() {
        std::promise<void> done;
        boost::asio::post(m_ioc, [this, &done] {
            m_blackhole = true;
            for (auto& s : m_sessions) {
                s->frozen = true;
            }
            done.set_value();
        });
        done.get_future().wait();
    }

    /// New connections are forwarded again; the frozen ones stay silent.
    void heal() {
        boost::asio::post(m_ioc, [this] { m_blackhole = false; });
    }

    /// The local ports of the upstream connections that are frozen: the server still sees them
    /// (as `client_port` in pg_stat_activity) although the client side is gone.
    [[nodiscard]] std::vector<unsigned short> frozen_upstream_ports() {
        std::promise<std::vector<unsigned short>> result;
        boost::asio::post(m_ioc, [this, &result] {
            std::vector<unsigned short> ports;
            for (auto const& s : m_sessions) {
                boost::system::error_code ec;
                auto const local = s->server.local_endpoint(ec);
                if (s->frozen && !ec) {
                    ports.push_back(local.port());
                }
            }
            result.set_value(std::move(ports));
        });
        return result.get_future().get();
    }

  private:
    struct session {
        explicit session(boost::asio::io_context& ioc) : client(ioc), server(ioc) {}
        boost::asio::ip::tcp::socket client;
        boost::asio::ip::tcp::socket server;
        bool frozen = false; ///< lived through a blackhole: forwards nothing, for ever
    };

    boost::asio::awaitable<void> accept_loop() {
        for (;;) {
            auto s = std::make_shared<session>(m_ioc);
            auto [ec] = co_await m_acceptor.async_accept(s->client,
                                                         boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec) {
                co_return;
            }
            m_sessions.push_back(s);
            boost::asio::co_spawn(m_ioc, run(s), boost::asio::detached);
        }
    }

    boost::asio::awaitable<void> run(std::shared_ptr<session> s) {
        if (m_blackhole) {
            s->frozen = true; // accepted, never forwarded
            co_await pump(*s, s->client, nullptr);
            co_return;
        }
        auto [ec] =
            co_await s->server.async_connect(m_upstream, boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec) {
            close(*s);
            co_return;
        }
        boost::asio::co_spawn(m_ioc, pump_and_close(s, true), boost::asio::detached);
        co_await pump_and_close(s, false);
    }

    boost::asio::awaitable<void> pump_and_close(std::shared_ptr<session> s, bool to_client) {
        if (to_client) {
            co_await pump(*s, s->server, &s->client);
        } else {
            co_await pump(*s, s->client, &s->server);
        }
        if (!s->frozen) { // a silent path does not pass on the end of a connection either
            close(*s);
        }
    }

    /// Copies from `from` to `to` until the session is frozen; then drops what arrives.
    boost::asio::awaitable<void> pump(session& s, boost::asio::ip::tcp::socket& from,
                                      boost::asio::ip::tcp::socket* to) {
        std::array<char, 16384> buf{};
        for (;;) {
            auto [ec, n] = co_await from.async_read_some(boost::asio::buffer(buf),
                                                         boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec) {
                co_return;
            }
            if (s.frozen || to == nullptr) {
                continue;
            }
            auto [wec, written] = co_await boost::asio::async_write(
                *to, boost::asio::buffer(buf.data(), n), boost::asio::as_tuple(boost::asio::use_awaitable));
            if (wec) {
                co_return;
            }
        }
    }

    void close(session& s) {
        boost::system::error_code ignored;
        s.client.close(ignored);
        s.server.close(ignored);
    }

    void close_all() {
        for (auto& s : m_sessions) {
            close(*s);
        }
        m_sessions.clear();
    }

    boost::asio::io_context m_ioc;
    boost::asio::ip::tcp::endpoint m_upstream;
    boost::asio::ip::tcp::acceptor m_acceptor;
    std::list<std::shared_ptr<session>> m_sessions;
    std::atomic<bool> m_blackhole{false};
    std::thread m_thread;
};

} // namespace kachel::test
