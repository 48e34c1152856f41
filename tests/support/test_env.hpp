#pragma once

#include "pg/connect_params.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace kachel::test {

/// A variable exported by `scripts/pg-cluster.sh env` (run by scripts/test.sh).
/// \throws std::runtime_error naming the variable when it is missing.
inline std::string cluster_env(char const* name) {
    char const* value = std::getenv(name);
    if (value == nullptr || *value == '\0') {
        throw std::runtime_error{
            std::string{name} + " is not set: run the suite through scripts/test.sh, or export the output of "
                                "`scripts/pg-cluster.sh env DIR` for a running cluster"};
    }
    return value;
}

/// libpq connection string reaching `dbname` as role kachel over TCP with sslmode=verify-full,
/// the CA given in the string. Contains the password.
inline std::string tls_conninfo(std::string const& dbname, std::string const& host = "localhost") {
    return "host=" + host + " port=" + cluster_env("KACHEL_PG_PORT") + " dbname='" + dbname +
           "' user=kachel password=" + cluster_env("KACHEL_PG_PASSWORD") +
           " sslmode=verify-full sslrootcert=" + cluster_env("KACHEL_PG_CA");
}

/// The same as a URL without sslrootcert (for tests that pass the CA some other way).
inline std::string tls_url(std::string const& dbname, std::string const& sslmode = "verify-full") {
    return "postgresql://kachel:" + cluster_env("KACHEL_PG_PASSWORD") +
           "@localhost:" + cluster_env("KACHEL_PG_PORT") + "/" + dbname + "?sslmode=" + sslmode;
}

/// Connection parameters for `conninfo`, optionally with a root CA given like --ca-root-file.
inline pg::connect_params params_for(std::string const& conninfo,
                                     std::optional<std::string> ca_root_file = {},
                                     std::string application_name = "kachel-test") {
    pg::tls_overrides overrides;
    if (ca_root_file) {
        overrides.root_cert = pg::sourced_value{*ca_root_file, "--ca-root-file"};
    }
    auto params = pg::make_connect_params(conninfo, overrides, "test");
    params.application_name = std::move(application_name);
    return params;
}

} // namespace kachel::test
