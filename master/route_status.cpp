#include "master/route_status.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

namespace master {

namespace ch = common::channel;
using common::Json;

std::string_view RouteStatus::Key::parent() const {
    return std::string_view(name).substr(0, parent_length);
}

std::string_view RouteStatus::Key::source() const {
    const size_t at = name.find('@');
    return at == std::string::npos ? std::string_view() : std::string_view(name).substr(at + 1);
}

void RouteStatus::on_record(pid_t pid, const ch::RouteStats& record) {
    std::map<Key, Gauge>& gauges = gauges_[pid];
    for (uint32_t i = 0; i < record.count; ++i) {
        const ch::RouteStat& entry = record.routes[i];
        Key key{std::string(ch::route_name(entry)), entry.parent_length};
        gauges[key] = Gauge{entry.active, entry.down != 0};
        Totals& totals = totals_[std::move(key)];
        totals.total += entry.total_delta;
        totals.failures += entry.failures_delta;
    }
}

void RouteStatus::worker_exited(pid_t pid) {
    if (gauges_.erase(pid) != 0) forget_unconfigured();
}

void RouteStatus::configure(common::ConfigPtr config) {
    config_ = std::move(config);
    forget_unconfigured();
}

// Whether the current configuration has the route: its parent among
// [route] parents (direct when there are none), its source among
// source_addresses (none when there are none).
bool RouteStatus::configured(const Key& key) const {
    if (!config_) return true;
    const common::RouteConfig& route = config_->route;
    if (route.parents.empty() != (key.parent_length == 0)) return false;
    if (key.parent_length != 0 && std::find(route.parents.begin(), route.parents.end(),
                                            key.parent()) == route.parents.end()) {
        return false;
    }
    const std::string_view source = key.source();
    if (route.source_addresses.empty()) return source.empty();
    return std::any_of(route.source_addresses.begin(), route.source_addresses.end(),
                       [&](const common::SocketAddress& a) { return a.host_string() == source; });
}

void RouteStatus::forget_unconfigured() {
    std::erase_if(totals_, [&](const auto& entry) {
        return !configured(entry.first) && live(entry.first).workers == 0;
    });
}

RouteStatus::Live RouteStatus::live(const Key& key) const {
    Live out;
    for (const auto& [pid, gauges] : gauges_) {
        auto it = gauges.find(key);
        if (it == gauges.end()) continue;
        out.active += it->second.active;
        ++out.workers;
        if (it->second.down) ++out.down_workers;
    }
    return out;
}

Json RouteStatus::routes_json() const {
    Json list = Json::array();
    for (const auto& [key, totals] : totals_) {
        const Live now = live(key);
        Json item;
        item["name"] = key.name;
        item["parent"] = key.parent_length != 0 ? Json(std::string(key.parent())) : Json();
        item["source"] = key.source().empty() ? Json() : Json(std::string(key.source()));
        item["active"] = now.active;
        item["total"] = totals.total;
        item["failures"] = totals.failures;
        item["state"] = now.down_workers > 0 ? "down" : "up";
        item["down_workers"] = now.down_workers;
        item["workers"] = now.workers;
        list.push_back(std::move(item));
    }
    return list;
}

Json RouteStatus::parents_json() const {
    struct Sum {
        uint64_t active = 0, total = 0, failures = 0;
        bool all_down = true;
    };
    std::map<std::string, Sum, std::less<>> sums;
    for (const auto& [key, totals] : totals_) {
        if (key.parent_length == 0) continue;
        const Live now = live(key);
        Sum& sum = sums[std::string(key.parent())];
        sum.active += now.active;
        sum.total += totals.total;
        sum.failures += totals.failures;
        sum.all_down = sum.all_down && now.down_workers > 0;
    }
    Json out = Json::object();
    for (const auto& [name, sum] : sums) {
        Json& parent = out[name];
        parent["active"] = sum.active;
        parent["total"] = sum.total;
        parent["failures"] = sum.failures;
        parent["state"] = sum.all_down ? "down" : "up";
    }
    return out;
}

}  // namespace master
