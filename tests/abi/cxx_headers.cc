// The public headers compile as C++ too (and link from C++).
#include <ferry/ferry.h>
#include <ferry/plugin.h>

int main()
{
    ferry_agent_config cfg;
    ferry_agent_config_init(&cfg);
    return ferry_strerror(FERRY_OK)[0] == 's' && ferry_version() == FERRY_VERSION ? 0 : 1;
}
