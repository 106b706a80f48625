#include "common/default_config.h"

#include <unistd.h>

namespace common {

std::string default_config_path() {
    return ::access(kLocalConfig, F_OK) == 0 ? kLocalConfig : kSystemConfig;
}

}  // namespace common
