#include "http/compression.hpp"

#include "core/text.hpp"

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <memory>
#include <stdexcept>
#include <vector>

namespace kachel::http {

namespace {

struct brotli_decoder_deleter {
    void operator()(BrotliDecoderState* s) const noexcept { BrotliDecoderDestroyInstance(s); }
};
struct zstd_dctx_deleter {
    void operator()(ZSTD_DCtx* c) const noexcept { ZSTD_freeDCtx(c); }
};
/// Ends a z_stream when it leaves scope (deflateEnd or inflateEnd).
struct z_stream_guard {
    z_stream_guard(z_stream& s, bool is_inflating) noexcept : stream(s), inflating(is_inflating) {}
    z_stream& stream;
    bool inflating;
    z_stream_guard(z_stream_guard const&) = delete;
    z_stream_guard& operator=(z_stream_guard const&) = delete;
    ~z_stream_guard() {
        if (inflating) {
            inflateEnd(&stream);
        } else {
            deflateEnd(&stream);
        }
    }
};

constexpr std::size_t max_decoded_size = std::size_t{256} << 20;
constexpr int brotli_quality = 6;

/// q-values of an Accept-Encoding header by coding name (lower case), `*` included.
struct accept_list {
    std::vector<std::pair<std::string, double>> entries;

    [[nodiscard]] std::optional<double> explicit_q(std::string_view name) const noexcept {
        for (auto const& [n, q] : entries) {
            if (iequals(n, name)) {
                return q;
            }
        }
        return std::nullopt;
    }
    /// Explicit value, else the `*` value.
    [[nodiscard]] std::optional<double> q(std::string_view name) const noexcept {
        if (auto v = explicit_q(name)) {
            return v;
        }
        return explicit_q("*");
    }
};

accept_list parse_accept_encoding(std::string_view header) {
    accept_list out;
    while (!header.empty()) {
        auto const comma = header.find(',');
        auto item = trim(header.substr(0, comma));
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        if (item.empty()) {
            continue;
        }
        double q = 1.0;
        auto const semi = item.find(';');
        auto const name = trim(item.substr(0, semi));
        if (semi != std::string_view::npos) {
            auto params = trim(item.substr(semi + 1));
            if (params.size() > 2 && (params[0] == 'q' || params[0] == 'Q') && params[1] == '=') {
                auto const value = params.substr(2);
                double parsed = 0;
                auto const [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
                q = ec == std::errc{} ? std::clamp(parsed, 0.0, 1.0) : 0.0;
            }
        }
        out.entries.emplace_back(std::string{name}, q);
    }
    return out;
}

} // namespace

std::string_view encoding_token(encoding e) noexcept {
    switch (e) {
    case encoding::gzip:
        return "gzip";
    case encoding::brotli:
        return "br";
    case encoding::zstd:
        return "zstd";
    case encoding::identity:
        break;
    }
    return {};
}

std::optional<encoding> parse_encoding(std::string_view name) noexcept {
    if (name == "gzip") {
        return encoding::gzip;
    }
    if (name == "br" || name == "brotli") {
        return encoding::brotli;
    }
    if (name == "zstd") {
        return encoding::zstd;
    }
    if (name == "identity") {
        return encoding::identity;
    }
    return std::nullopt;
}

std::optional<encoding> negotiate_encoding(std::optional<std::string_view> header, encoding stored,
                                           bool compressible, encoding preferred) noexcept {
    if (!header) {
        return encoding::identity;
    }
    accept_list list;
    try {
        list = parse_accept_encoding(*header);
    } catch (...) {
        return encoding::identity;
    }
    if (stored != encoding::identity) {
        if (auto q = list.explicit_q(encoding_token(stored)); q && *q > 0) {
            return stored;
        }
    }
    if (!compressible) {
        return encoding::identity;
    }
    constexpr std::array<encoding, 3> order{encoding::brotli, encoding::zstd, encoding::gzip};
    auto const gz = list.q("gzip");
    auto const br = list.q("br");
    if (gz && br) {
        auto const zs = list.q("zstd").value_or(0.0);
        double const best = std::max({*gz, *br, zs});
        if (best <= 0) {
            return encoding::identity;
        }
        auto score = [&](encoding e) { return e == encoding::gzip ? *gz : e == encoding::brotli ? *br : zs; };
        if (score(preferred) == best) {
            return preferred;
        }
        for (auto e : order) {
            if (score(e) == best) {
                return e;
            }
        }
        return encoding::identity;
    }
    // Ordinary negotiation; identity is acceptable unless excluded.
    double best = 0;
    std::optional<encoding> chosen;
    auto consider = [&](encoding e, std::optional<double> q) {
        if (q && *q > 0 && (*q > best || (*q == best && chosen && e == preferred))) {
            best = *q;
            chosen = e;
        }
    };
    consider(encoding::gzip, gz);
    consider(encoding::brotli, br);
    consider(encoding::zstd, list.q("zstd"));
    std::optional<double> identity_q = list.explicit_q("identity");
    if (!identity_q) {
        auto const star = list.explicit_q("*");
        identity_q = star && *star == 0 ? 0.0 : 1.0;
    }
    if (*identity_q > best) {
        return encoding::identity;
    }
    if (chosen) {
        return chosen;
    }
    return *identity_q > 0 ? std::optional<encoding>{encoding::identity} : std::nullopt;
}

std::string compress(std::string_view data, encoding e) {
    switch (e) {
    case encoding::identity:
        return std::string{data};
    case encoding::gzip: {
        z_stream zs{};
        if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            throw std::runtime_error{"gzip: deflateInit2 failed"};
        }
        z_stream_guard const guard{zs, false};
        std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
        zs.avail_in = static_cast<uInt>(data.size());
        zs.next_out = reinterpret_cast<Bytef*>(out.data());
        zs.avail_out = static_cast<uInt>(out.size());
        int const rc = deflate(&zs, Z_FINISH);
        out.resize(zs.total_out);
        if (rc != Z_STREAM_END) {
            throw std::runtime_error{"gzip: deflate failed"};
        }
        return out;
    }
    case encoding::brotli: {
        std::size_t size = BrotliEncoderMaxCompressedSize(data.size());
        std::string out(size == 0 ? data.size() + 1024 : size, '\0');
        size = out.size();
        if (BrotliEncoderCompress(brotli_quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, data.size(),
                                  reinterpret_cast<uint8_t const*>(data.data()), &size,
                                  reinterpret_cast<uint8_t*>(out.data())) == BROTLI_FALSE) {
            throw std::runtime_error{"brotli: compression failed"};
        }
        out.resize(size);
        return out;
    }
    case encoding::zstd: {
        std::string out(ZSTD_compressBound(data.size()), '\0');
        auto const size =
            ZSTD_compress(out.data(), out.size(), data.data(), data.size(), ZSTD_CLEVEL_DEFAULT);
        if (ZSTD_isError(size) != 0U) {
            throw std::runtime_error{std::string{"zstd: "} + ZSTD_getErrorName(size)};
        }
        out.resize(size);
        return out;
    }
    }
    return std::string{data};
}

std::string decompress(std::string_view data, encoding e) {
    std::string out;
    std::array<char, 65536> buffer{};
    auto append = [&](std::size_t n) {
        out.append(buffer.data(), n);
        if (out.size() > max_decoded_size) {
            throw std::runtime_error{"decompressed data too large"};
        }
    };
    switch (e) {
    case encoding::identity:
        return std::string{data};
    case encoding::gzip: {
        z_stream zs{};
        if (inflateInit2(&zs, 15 + 32) != Z_OK) {
            throw std::runtime_error{"gzip: inflateInit2 failed"};
        }
        z_stream_guard const guard{zs, true};
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
        zs.avail_in = static_cast<uInt>(data.size());
        int rc = Z_OK;
        while (rc != Z_STREAM_END) {
            zs.next_out = reinterpret_cast<Bytef*>(buffer.data());
            zs.avail_out = static_cast<uInt>(buffer.size());
            rc = inflate(&zs, Z_NO_FLUSH);
            if (rc != Z_OK && rc != Z_STREAM_END) {
                throw std::runtime_error{"gzip: invalid data"};
            }
            append(buffer.size() - zs.avail_out);
            if (rc == Z_STREAM_END && zs.avail_in > 0) {
                inflateReset(&zs); // concatenated members (composite tiles)
                rc = Z_OK;
            }
        }
        return out;
    }
    case encoding::brotli: {
        std::unique_ptr<BrotliDecoderState, brotli_decoder_deleter> state{
            BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)};
        auto const* next_in = reinterpret_cast<uint8_t const*>(data.data());
        std::size_t avail_in = data.size();
        for (;;) {
            auto* next_out = reinterpret_cast<uint8_t*>(buffer.data());
            std::size_t avail_out = buffer.size();
            auto const rc = BrotliDecoderDecompressStream(state.get(), &avail_in, &next_in, &avail_out,
                                                          &next_out, nullptr);
            append(buffer.size() - avail_out);
            if (rc == BROTLI_DECODER_RESULT_SUCCESS) {
                return out;
            }
            if (rc == BROTLI_DECODER_RESULT_ERROR ||
                (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT && avail_in == 0)) {
                throw std::runtime_error{"brotli: invalid data"};
            }
        }
    }
    case encoding::zstd: {
        std::unique_ptr<ZSTD_DCtx, zstd_dctx_deleter> ctx{ZSTD_createDCtx()};
        ZSTD_inBuffer in{data.data(), data.size(), 0};
        while (in.pos < in.size) {
            ZSTD_outBuffer o{buffer.data(), buffer.size(), 0};
            auto const rc = ZSTD_decompressStream(ctx.get(), &o, &in);
            if (ZSTD_isError(rc) != 0U) {
                throw std::runtime_error{std::string{"zstd: "} + ZSTD_getErrorName(rc)};
            }
            append(o.pos);
        }
        return out;
    }
    }
    return out;
}

} // namespace kachel::http
