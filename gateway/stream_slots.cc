#include "gateway/stream_slots.h"

#include "common/strings.h"

namespace sluice::gateway {

StreamSlot& StreamSlot::operator=(StreamSlot&& other) noexcept {
  if (this != &other) {
    if (slots_ != nullptr) slots_->Release(principal_);
    slots_ = other.slots_;
    principal_ = std::move(other.principal_);
    other.slots_ = nullptr;
  }
  return *this;
}

StreamSlot::~StreamSlot() {
  if (slots_ != nullptr) slots_->Release(principal_);
}

absl::StatusOr<StreamSlot> StreamSlots::Acquire(std::string_view principal) {
  std::lock_guard lock(mu_);
  auto it = by_principal_.find(principal);
  const size_t mine = it == by_principal_.end() ? 0 : it->second;
  if (mine >= per_principal_)
    return absl::ResourceExhaustedError(common::Cat("principal \"", principal, "\" already has ", mine,
                                                    " open streams (PublishStream, Subscribe, Replay), the most "
                                                    "one caller may hold (--max-streams-per-principal)"));
  if (open_ >= total_)
    return absl::ResourceExhaustedError(
        common::Cat("the gateway already serves ", open_, " open streams, its limit (--max-streams); try again later"));
  if (it == by_principal_.end()) it = by_principal_.emplace(std::string(principal), 0).first;
  ++it->second;
  ++open_;
  return StreamSlot(this, std::string(principal));
}

void StreamSlots::Release(const std::string& principal) {
  std::lock_guard lock(mu_);
  --open_;
  auto it = by_principal_.find(principal);
  if (it != by_principal_.end() && --it->second == 0) by_principal_.erase(it);
}

size_t StreamSlots::open() const {
  std::lock_guard lock(mu_);
  return open_;
}

size_t StreamSlots::open(std::string_view principal) const {
  std::lock_guard lock(mu_);
  auto it = by_principal_.find(principal);
  return it == by_principal_.end() ? 0 : it->second;
}

}  // namespace sluice::gateway
