#include "tiles/archive_paths.hpp"

#include "core/error.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <array>
#include <filesystem>

namespace kachel::tiles {

namespace fs = std::filesystem;

std::vector<archive_file> archive_files(archive_config const& config, std::string_view extension,
                                        bool missing_ok) {
    std::vector<archive_file> out;
    for (auto const& source : config.sources) {
        std::error_code ec;
        if (is_http_url(source.path) || fs::is_regular_file(source.path, ec)) {
            out.push_back(source);
        } else if (!missing_ok) {
            throw config_error{fmt_error("{}: source {}: {} is not a file: give the path of an archive",
                                         config.origin, source.id, source.path)};
        }
    }
    for (auto const& path : config.paths) {
        if (is_http_url(path)) {
            out.push_back({path, {}});
            continue;
        }
        std::error_code ec;
        auto const status = fs::status(path, ec);
        if (fs::is_regular_file(status)) {
            out.push_back({path, {}});
        } else if (fs::is_directory(status)) {
            std::vector<std::string> found;
            for (auto const& entry : fs::directory_iterator{path, ec}) {
                if (entry.is_regular_file() && entry.path().filename().string().ends_with(extension)) {
                    found.push_back(entry.path().string());
                }
            }
            if (ec) {
                throw config_error{
                    fmt_error("{}: cannot list the directory {}: {}", config.origin, path, ec.message())};
            }
            std::sort(found.begin(), found.end());
            for (auto& f : found) {
                out.push_back({std::move(f), {}});
            }
        } else if (!missing_ok) {
            throw config_error{
                fmt_error("{}: {} does not exist (or is neither a file nor a directory): give an "
                          "archive file or a directory of them",
                          config.origin, path)};
        }
    }
    return out;
}

bool is_remote_archive(std::string_view path) noexcept {
    // The object stores Martin reads archives from.
    constexpr std::array<std::string_view, 9> schemes{"http://", "https://", "s3://",   "s3a://",  "gs://",
                                                      "az://",   "azure://", "abfs://", "abfss://"};
    return std::any_of(schemes.begin(), schemes.end(),
                       [path](std::string_view scheme) { return path.starts_with(scheme); });
}

bool is_http_url(std::string_view path) noexcept {
    return path.starts_with("http://") || path.starts_with("https://");
}

std::string file_stem(std::string_view path) {
    if (is_http_url(path)) {
        path = path.substr(0, path.find_first_of("?#"));
    }
    return fs::path{std::string{path}}.stem().string();
}

} // namespace kachel::tiles
