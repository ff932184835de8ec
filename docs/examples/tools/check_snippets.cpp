// Keeps the guide's code and the compiled examples identical.
//
// Every ```cpp block in docs/guide/*.md must follow a marker naming a region
// of a file in docs/examples/:
//
//   <!-- snippet: files.cpp open -->
//   ```cpp
//   ...
//   ```
//
// and the block must equal that region: the lines between "// doc-begin: open"
// and "// doc-end: open" in docs/examples/files.cpp, with other regions'
// marker lines dropped and the common indentation removed. Every region must
// be shown somewhere, so no example drifts out of the guide unnoticed.
//
//   check_snippets DOCS_DIR            report differences, exit 1 if any
//   check_snippets DOCS_DIR --update   rewrite the Markdown blocks from the files
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using lines = std::vector<std::string>;

lines read_lines(const fs::path& p) {
  std::ifstream in(p);
  lines out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// "// doc-begin: name" -> name (kind "begin" or "end"), else "".
std::string marker(const std::string& line, const char* kind) {
  const std::string prefix = std::string("// doc-") + kind + ": ";
  const std::string t = trim(line);
  return t.rfind(prefix, 0) == 0 ? trim(t.substr(prefix.size())) : std::string();
}

bool is_marker(const std::string& line) { return !marker(line, "begin").empty() || !marker(line, "end").empty(); }

lines dedent(lines body) {
  std::size_t common = std::string::npos;
  for (const auto& l : body) {
    const auto first = l.find_first_not_of(' ');
    if (first != std::string::npos) common = std::min(common, first);
  }
  for (auto& l : body) l = l.size() > common && common != std::string::npos ? l.substr(common) : trim(l);
  return body;
}

// Every region of one example file, by name; errors are appended to errs.
std::map<std::string, lines> regions(const fs::path& file, std::vector<std::string>& errs) {
  const lines src = read_lines(file);
  std::map<std::string, lines> out;
  for (std::size_t i = 0; i < src.size(); ++i) {
    const std::string name = marker(src[i], "begin");
    if (name.empty()) continue;
    lines body;
    std::size_t j = i + 1;
    for (; j < src.size() && marker(src[j], "end") != name; ++j) {
      if (!is_marker(src[j])) body.push_back(src[j]);
    }
    if (j == src.size()) errs.push_back(file.string() + ": region '" + name + "' has no doc-end");
    if (!out.emplace(name, dedent(body)).second) errs.push_back(file.string() + ": region '" + name + "' twice");
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: check_snippets DOCS_DIR [--update]\n");
    return 2;
  }
  const fs::path docs = argv[1];
  const bool update = argc > 2 && std::string(argv[2]) == "--update";
  std::vector<std::string> errs;

  std::map<std::string, std::map<std::string, lines>> files;  // example file -> regions
  for (const auto& e : fs::directory_iterator(docs / "examples")) {
    if (e.path().extension() == ".cpp") files[e.path().filename().string()] = regions(e.path(), errs);
  }
  std::set<std::string> shown;

  std::vector<fs::path> pages;
  for (const auto& e : fs::directory_iterator(docs / "guide")) {
    if (e.path().extension() == ".md") pages.push_back(e.path());
  }
  std::sort(pages.begin(), pages.end());
  for (const auto& page : pages) {
    const lines md = read_lines(page);
    lines out;
    bool changed = false;
    std::string want_file, want_region;  // from the last marker line
    for (std::size_t i = 0; i < md.size(); ++i) {
      const std::string t = trim(md[i]);
      const std::string where = page.filename().string() + ":" + std::to_string(i + 1);
      out.push_back(md[i]);
      if (t.rfind("<!-- snippet:", 0) == 0) {
        std::istringstream in(t.substr(13));
        in >> want_file >> want_region;
        continue;
      }
      if (t.rfind("```", 0) != 0 || t == "```") {
        if (!t.empty()) want_file.clear();
        continue;
      }
      // An opening fence: find its end.
      std::size_t end = i + 1;
      while (end < md.size() && trim(md[end]) != "```") ++end;
      const bool cpp = t == "```cpp" || t == "```c++";
      if (!cpp) {
        for (std::size_t k = i + 1; k <= end && k < md.size(); ++k) out.push_back(md[k]);
        i = end;
        want_file.clear();
        continue;
      }
      const lines block(md.begin() + static_cast<long>(i) + 1, md.begin() + static_cast<long>(std::min(end, md.size())));
      const lines* region = nullptr;
      if (want_file.empty()) {
        errs.push_back(where + ": C++ block without a '<!-- snippet: FILE REGION -->' line before it");
      } else if (!files.count(want_file)) {
        errs.push_back(where + ": no docs/examples/" + want_file);
      } else if (!files[want_file].count(want_region)) {
        errs.push_back(where + ": " + want_file + " has no region '" + want_region + "'");
      } else {
        region = &files[want_file][want_region];
        shown.insert(want_file + " " + want_region);
        if (*region != block) {
          if (update) {
            changed = true;
          } else {
            errs.push_back(where + ": block differs from " + want_file + " region '" + want_region +
                           "' (run check_snippets DOCS_DIR --update after editing the example)");
          }
        }
      }
      const lines& body = update && region != nullptr ? *region : block;
      out.insert(out.end(), body.begin(), body.end());
      if (end < md.size()) out.push_back(md[end]);
      i = end;
      want_file.clear();
    }
    if (changed) {
      std::ofstream o(page, std::ios::trunc);
      for (const auto& l : out) o << l << '\n';
      std::printf("updated %s\n", page.string().c_str());
    }
  }
  for (const auto& [file, regs] : files) {
    for (const auto& [name, body] : regs) {
      if (!shown.count(file + " " + name)) errs.push_back(file + ": region '" + name + "' is not shown in the guide");
    }
  }
  for (const auto& e : errs) std::fprintf(stderr, "check_snippets: %s\n", e.c_str());
  return errs.empty() ? 0 : 1;
}
