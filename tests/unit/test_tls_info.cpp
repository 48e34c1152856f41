#include "pg/tls_info.hpp"

#include <gtest/gtest.h>

using kachel::pg::is_local_host;

TEST(tls_info, local_hosts_are_exempt_from_the_interception_warning) {
    EXPECT_TRUE(is_local_host("localhost"));
    EXPECT_TRUE(is_local_host("127.0.0.1"));
    EXPECT_TRUE(is_local_host("127.1.2.3"));
    EXPECT_TRUE(is_local_host("::1"));
    EXPECT_TRUE(is_local_host("/var/run/postgresql"));
    EXPECT_FALSE(is_local_host("db.example.org"));
    EXPECT_FALSE(is_local_host("10.0.0.5"));
    EXPECT_FALSE(is_local_host("localhost.example.org"));
}

TEST(tls_info, expiry_days_and_description) {
    kachel::pg::certificate_info cert;
    cert.subject = "CN=localhost";
    cert.issuer = "CN=ca";
    cert.subject_alt_names = {"DNS:localhost"};
    cert.not_after = std::chrono::system_clock::now() + std::chrono::hours{24 * 10 + 1};
    EXPECT_EQ(cert.days_left(), 10);
    EXPECT_NE(cert.describe().find("subject CN=localhost, issuer CN=ca, SAN DNS:localhost, expires "),
              std::string::npos)
        << cert.describe();
    EXPECT_TRUE(kachel::pg::read_certificates("/nonexistent.pem").empty());
}
