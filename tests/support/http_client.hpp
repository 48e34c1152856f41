#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/system/system_error.hpp>

#include <array>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace kachel::test {

struct http_reply {
    unsigned status = 0;
    std::map<std::string, std::string> headers; ///< names lower-cased
    std::string body;

    [[nodiscard]] std::string header(std::string const& name) const {
        auto const it = headers.find(name);
        return it == headers.end() ? std::string{} : it->second;
    }
};

/// One blocking HTTP/1.1 request to 127.0.0.1:port (tests only).
inline http_reply http_request(unsigned short port, std::string const& target,
                               boost::beast::http::verb method = boost::beast::http::verb::get,
                               std::vector<std::pair<std::string, std::string>> const& headers = {}) {
    namespace bhttp = boost::beast::http;
    boost::asio::io_context ioc;
    boost::beast::tcp_stream stream{ioc};
    stream.expires_after(std::chrono::seconds{30});
    stream.connect(boost::asio::ip::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), port});
    bhttp::request<bhttp::empty_body> req{method, target, 11};
    req.set(bhttp::field::host, "localhost:" + std::to_string(port));
    for (auto const& [name, value] : headers) {
        req.set(name, value);
    }
    boost::beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.skip(method == bhttp::verb::head);
    // Asynchronous, so that the 30 s expiry holds (Beast's synchronous calls ignore it): a server
    // that never answers fails the test instead of hanging it.
    boost::beast::error_code ec;
    bhttp::async_write(stream, req, [&](boost::beast::error_code const& write_ec, std::size_t) {
        ec = write_ec;
        if (!ec) {
            bhttp::async_read(stream, buffer, parser,
                              [&](boost::beast::error_code const& read_ec, std::size_t) { ec = read_ec; });
        }
    });
    ioc.run();
    if (ec) {
        throw boost::system::system_error{ec, std::string{bhttp::to_string(method)} + " " + target};
    }
    auto const& res = parser.get();
    http_reply reply;
    reply.status = res.result_int();
    for (auto const& field : res) {
        std::string name{field.name_string()};
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        reply.headers[name] = std::string{field.value()};
    }
    reply.body = res.body();
    boost::beast::error_code ignored;
    stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    return reply;
}

inline http_reply http_get(unsigned short port, std::string const& target) {
    return http_request(port, target);
}

/// Sends raw bytes to 127.0.0.1:port and returns everything read until the server closes the
/// connection (or `timeout` passes).
inline std::string raw_exchange(unsigned short port, std::string const& bytes,
                                std::chrono::seconds timeout = std::chrono::seconds{15}) {
    boost::asio::io_context ioc;
    boost::beast::tcp_stream stream{ioc};
    stream.connect(boost::asio::ip::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), port});
    stream.expires_after(timeout);
    boost::beast::error_code ec;
    boost::asio::write(stream.socket(), boost::asio::buffer(bytes), ec);
    std::string out;
    std::array<char, 4096> buf{};
    for (;;) {
        auto const n = stream.read_some(boost::asio::buffer(buf), ec);
        out.append(buf.data(), n);
        if (ec) {
            break;
        }
    }
    return out;
}

/// The value of an unlabelled series in kachel's `/_/metrics`; nullopt when absent.
inline std::optional<double> metric_value(unsigned short port, std::string const& name) {
    auto const text = http_get(port, "/_/metrics").body;
    std::smatch m;
    if (!std::regex_search(text, m, std::regex{"\n" + name + " ([0-9.e+-]+)"})) {
        return std::nullopt;
    }
    return std::stod(m[1]);
}

/// The sum of the series of a labelled metric in kachel's `/_/metrics` whose labels hold `labels`
/// (e.g. `outcome="applied"`); 0 when there are none.
inline double metric_sum(unsigned short port, std::string const& name, std::string const& labels = {}) {
    auto const text = http_get(port, "/_/metrics").body;
    double total = 0;
    std::regex const line{"\n" + name + "\\{([^}]*)\\} ([0-9.e+-]+)"};
    for (auto it = std::sregex_iterator(text.begin(), text.end(), line); it != std::sregex_iterator{}; ++it) {
        if ((*it)[1].str().find(labels) != std::string::npos) {
            total += std::stod((*it)[2].str());
        }
    }
    return total;
}

} // namespace kachel::test
