#include "frontend/resp/resp_dispatcher.h"

#include <gtest/gtest.h>

#include <set>

#include "frontend/resp/resp_command_table.h"

namespace micedb::resp {
namespace {

TEST(UnknownCommandErrorTest, RedisWording) {
  EXPECT_EQ(UnknownCommandError({"foo"}), "ERR unknown command 'foo', with args beginning with: ");
  EXPECT_EQ(UnknownCommandError({"foo", "a", "b"}),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
}

TEST(UnknownCommandErrorTest, ListedArgumentsAreCutAt128Bytes) {
  const std::string long_arg(200, 'x');
  const std::string error = UnknownCommandError({std::string(300, 'c'), long_arg, "next"});
  EXPECT_EQ(error, "ERR unknown command '" + std::string(128, 'c') +
                       "', with args beginning with: '" + std::string(128, 'x') + "' ");
}

TEST(CommandTableTest, NamesAreUniqueLowercaseAndFindable) {
  std::set<std::string_view> names;
  for (const CommandSpec& spec : CommandTable()) {
    EXPECT_TRUE(names.insert(spec.name).second) << spec.name;
    EXPECT_NE(spec.arity, 0) << spec.name;
    EXPECT_NE(spec.handler, nullptr) << spec.name;
    for (char c : spec.name) EXPECT_FALSE(c >= 'A' && c <= 'Z') << spec.name;
    EXPECT_EQ(FindCommand(spec.name), &spec);
    EXPECT_EQ(CommandIndex(spec), static_cast<size_t>(&spec - CommandTable().data()));
  }
  EXPECT_EQ(FindCommand("GeT"), FindCommand("get"));
  EXPECT_EQ(FindCommand("nosuch"), nullptr);
  EXPECT_NE(FindSubcommand(*FindCommand("client"), "SETNAME"), nullptr);
}

TEST(CommandTableTest, Arity) {
  EXPECT_TRUE(ArityOk(2, 2));
  EXPECT_FALSE(ArityOk(2, 3));
  EXPECT_TRUE(ArityOk(-2, 5));
  EXPECT_FALSE(ArityOk(-3, 2));
}

}  // namespace
}  // namespace micedb::resp
