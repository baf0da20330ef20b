// Ground truth for tests/mocks/nlohmann_parse_errors.yaml: what llama.cpp's llama-server (build
// b4748, commit c392e509) answers when nlohmann::json::parse rejects a request body.
//
// For each input this does what that server does with a request body: `json::parse(req.body)`;
// httplib's exception handler takes `e.what()` into `format_error_response(message,
// ERROR_TYPE_SERVER)`, and `res_error` writes `{"error": ...}` with `safe_json_to_str`, that is
// `dump(-1, ' ', false, json::error_handler_t::replace)`.
//
// Protocol (one case a line, hex so that any byte survives):
//   stdin:  <name> TAB <hex of the body>
//   stdout: <name> TAB rejected TAB <hex of e.what()> TAB <hex of the HTTP body>
//       or: <name> TAB accepted TAB <hex of the parsed value, dumped as above> TAB
//
// Regenerate the fixture (tests/mocks/nlohmann_corpus.py holds the inputs and writes the YAML):
//   1. nlohmann/json 3.11.3 headers: llama.cpp c392e509 vendors the single header
//      common/json.hpp; Debian bookworm's nlohmann-json3-dev (3.11.2) has the same lexer,
//      messages and serializer, but lacks 3.11.3's "attempting to parse an empty input" branch
//      in parser::sax_parse_internal (case token_type::end_of_input), so patch that in or use
//      the 3.11.3 header.
//   2. g++ -std=c++17 -O1 -I <dir holding nlohmann/json.hpp> tests/mocks/nlohmann_errors.cpp \
//          -o /tmp/nlohmann_errors
//      (or -DJSON_HEADER='"/path/to/llama.cpp/common/json.hpp"' for llama.cpp's copy)
//   3. .venv/bin/python tests/mocks/nlohmann_corpus.py /tmp/nlohmann_errors

#ifdef JSON_HEADER
#include JSON_HEADER
#else
#include <nlohmann/json.hpp>
#endif

#include <exception>
#include <iostream>
#include <string>

using json = nlohmann::json;

static std::string to_hex(const std::string & bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 0x0f]);
    }
    return out;
}

static std::string from_hex(const std::string & hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

static std::string safe_json_to_str(const json & data) {
    return data.dump(-1, ' ', false, json::error_handler_t::replace);
}

int main() {
    std::string line;
    while (std::getline(std::cin, line)) {
        const auto tab = line.find('\t');
        if (tab == std::string::npos) {
            continue;
        }
        const std::string name = line.substr(0, tab);
        const std::string body = from_hex(line.substr(tab + 1));
        try {
            const json value = json::parse(body);
            std::cout << name << "\taccepted\t" << to_hex(safe_json_to_str(value)) << "\t\n";
        } catch (const std::exception & e) {
            const std::string message = e.what();
            const json error = {{"code", 500}, {"message", message}, {"type", "server_error"}};
            const json reply = {{"error", error}};
            std::cout << name << "\trejected\t" << to_hex(message) << '\t'
                      << to_hex(safe_json_to_str(reply)) << '\n';
        }
    }
    return 0;
}
