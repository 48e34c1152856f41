#pragma once

#include <boost/asio/awaitable.hpp>

#include <string>
#include <vector>

namespace kachel::tiles {

/// Whether the sources' backends can serve now, for `/_/ready`. The HTTP layer knows only this;
/// each backend (the PostGIS pools, later archives on remote storage) implements it.
class readiness_check {
  public:
    readiness_check() = default;
    readiness_check(readiness_check const&) = delete;
    readiness_check& operator=(readiness_check const&) = delete;
    virtual ~readiness_check() = default;

    /// Why tiles cannot be served now, one line per failing backend for the client to read (no
    /// secrets, no SQL); empty when ready.
    [[nodiscard]] virtual boost::asio::awaitable<std::vector<std::string>> async_problems() const = 0;

    /// What the client may also want to know when ready, one line each (the hosts of a replica
    /// set); empty by default.
    [[nodiscard]] virtual std::vector<std::string> details() const { return {}; }
};

} // namespace kachel::tiles
