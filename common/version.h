// The version of proxyd and proxyctl, printed by `proxyd -v` and
// `proxyctl --version`; debian/changelog names the same one.
#pragma once

namespace common {

inline constexpr char kVersion[] = "0.1.0";

}  // namespace common
