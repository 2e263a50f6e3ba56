"""The demo township 清水镇 (Qingshui Town) as plain data: its departments and responsibility
list, villages and dedicated grids, devices, accounts and alert rules.

`demo.seed` matches rows on their codes (usernames for accounts, Chinese names for alert
rules): seeding again updates a row whose fields changed here, but for alert rules, which are
only ever added; a changed key makes a new row and leaves the old one.
"""

from __future__ import annotations

from datetime import time
from typing import Any

from command.org.models import Department, User

TOWNSHIP_CODE = "qingshui"
# The unified grid code carries the district's administrative division code, as real ones do.
GRID_CODE_PREFIX = "110112-QS"
DISTRICT = {"code": "qingshan", "name": "青山区", "name_en": "Qingshan District"}
TOWNSHIP = {
    "name": "清水镇",
    "name_en": "Qingshui Town",
    "time_zone": "Asia/Shanghai",
}

# The township map, north row first, west to east; None leaves a corner out so the outline is
# not a plain rectangle. Names ending in 村 are villages, in 社区 urban communities. demo.maps
# draws one comprehensive grid per entry.
GRID_MAP: tuple[tuple[tuple[str, str] | None, ...], ...] = (
    (
        None,
        ("北台村", "Beitai"),
        ("山后村", "Shanhou"),
        ("后营村", "Houying"),
        ("北沙滩村", "Beishatan"),
        ("上庄村", "Shangzhuang"),
        ("杨树沟村", "Yangshugou"),
        ("东岭村", "Dongling"),
        None,
    ),
    (
        ("西山村", "Xishan"),
        ("卧龙岗村", "Wolonggang"),
        ("高家岭村", "Gaojialing"),
        ("古城村", "Gucheng"),
        ("石佛寺村", "Shifosi"),
        ("庙上村", "Miaoshang"),
        ("果园村", "Guoyuan"),
        ("桃园村", "Taoyuan"),
        ("青龙湾村", "Qinglongwan"),
    ),
    (
        ("西沟村", "Xigou"),
        ("石门村", "Shimen"),
        ("文化社区", "Wenhua"),
        ("镇中社区", "Zhenzhong"),
        ("清水社区", "Qingshui"),
        ("花园社区", "Huayuan"),
        ("新华社区", "Xinhua"),
        ("龙潭村", "Longtan"),
        ("东沟村", "Donggou"),
    ),
    (
        ("赵家峪村", "Zhaojiayu"),
        ("白石村", "Baishi"),
        ("和平社区", "Heping"),
        ("桥西社区", "Qiaoxi"),
        ("桥东社区", "Qiaodong"),
        ("站前社区", "Zhanqian"),
        ("滨河社区", "Binhe"),
        ("水泉村", "Shuiquan"),
        ("双井村", "Shuangjing"),
    ),
    (
        ("黄土坡村", "Huangtupo"),
        ("马坊村", "Mafang"),
        ("杏林村", "Xinglin"),
        ("大王庄村", "Dawangzhuang"),
        ("小王庄村", "Xiaowangzhuang"),
        ("前营村", "Qianying"),
        ("苇塘村", "Weitang"),
        ("三岔口村", "Sanchakou"),
        ("梨花村", "Lihua"),
    ),
    (
        None,
        ("山前村", "Shanqian"),
        ("枣园村", "Zaoyuan"),
        ("张家庄村", "Zhangjiazhuang"),
        ("下庄村", "Xiazhuang"),
        ("南沙滩村", "Nanshatan"),
        ("南台村", "Nantai"),
        ("柳树庄村", "Liushuzhuang"),
        None,
    ),
)

# (code suffix, slug, Chinese, English, host village/community slug, radius in cell units)
DEDICATED_GRIDS: tuple[tuple[str, str, str, str, str, float], ...] = (
    ("Z01", "school", "清水镇中心小学", "Qingshui Central Primary School", "wenhua", 0.12),
    ("Z02", "industrial", "清水工业园", "Qingshui Industrial Park", "sanchakou", 0.2),
    ("Z03", "quarry", "石门废弃采石场", "Shimen closed quarry", "shimen", 0.18),
    ("Z04", "reservoir", "青龙湾水库", "Qinglongwan Reservoir", "qinglongwan", 0.2),
    ("Z05", "hospital", "清水镇卫生院", "Qingshui Town Health Centre", "zhenzhong", 0.1),
    ("Z06", "market", "清水农贸市场", "Qingshui Farmers' Market", "huayuan", 0.12),
    ("Z07", "station", "清水火车站", "Qingshui Railway Station", "zhanqian", 0.12),
    (
        "Z08",
        "site",
        "滨河安置房建设工地",
        "Binhe resettlement housing construction site",
        "binhe",
        0.14,
    ),
    ("Z09", "middle-school", "清水中学", "Qingshui Middle School", "heping", 0.1),
)

CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("illegal-mining", "盗采", "Illegal mining"),
    ("illegal-construction", "违建", "Illegal construction"),
    ("parking", "乱停车", "Illegal parking & congestion"),
    ("garbage", "垃圾堆物", "Garbage & debris"),
    ("straw-burning", "秸秆禁烧", "Straw burning"),
    ("rental-housing", "出租房屋", "Rental housing"),
    ("production-safety", "安全生产", "Production safety"),
    ("unlicensed-business", "无照经营", "Unlicensed business"),
    ("dispute", "矛盾纠纷", "Disputes"),
    ("flood", "防汛", "Flood & water level"),
    ("fire", "火情", "Fire & smoke"),
    ("public-order", "治安", "Public order"),
    ("air-quality", "大气污染", "Air pollution"),
    ("gas-leak", "燃气泄漏", "Gas leak"),
    ("device-fault", "设备故障", "Device fault"),
)

_OFFICE = Department.Kind.OFFICE
_STATION = Department.Kind.STATION
_DISTRICT = Department.Kind.DISTRICT
# (code, kind, Chinese, English, contact, phone). Phones use the fictional 555 range.
DEPARTMENTS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("qs-dangzheng", _OFFICE, "党政办", "Party & Government Office", "张丽华", "010-555-0101"),
    ("qs-dangqun", _OFFICE, "党群办", "Party & Community Affairs Office", "刘志强", "010-555-0102"),
    ("qs-jingji", _OFFICE, "经济发展办", "Economic Development Office", "赵明", "010-555-0103"),
    (
        "qs-minzheng",
        _OFFICE,
        "民政和社会事务办",
        "Civil & Social Affairs Office",
        "孙秀英",
        "010-555-0104",
    ),
    ("qs-pingan", _OFFICE, "平安建设办", "Public Safety Office", "周建军", "010-555-0105"),
    (
        "qs-guihua",
        _OFFICE,
        "规划建设管理环保办",
        "Planning, Construction & Environment Office",
        "吴海涛",
        "010-555-0106",
    ),
    ("qs-caizheng", _OFFICE, "财政办", "Finance Office", "郑雪梅", "010-555-0107"),
    ("qs-yingji", _OFFICE, "应急办", "Emergency Office", "王国栋", "010-555-0108"),
    (
        "qs-nongye",
        _STATION,
        "农业服务中心",
        "Agricultural Service Centre",
        "冯德胜",
        "010-555-0111",
    ),
    ("qs-wenhua", _STATION, "文化服务中心", "Cultural Service Centre", "陈晓燕", "010-555-0112"),
    (
        "qs-shebao",
        _STATION,
        "劳动社保所",
        "Labour & Social Security Office",
        "褚立新",
        "010-555-0113",
    ),
    (
        "qs-zhifa",
        _STATION,
        "综合行政执法大队",
        "Comprehensive Law Enforcement Brigade",
        "卫东升",
        "010-555-0114",
    ),
    ("qs-tuiyi", _STATION, "退役军人服务站", "Veterans Service Station", "蒋振华", "010-555-0115"),
    ("police", _DISTRICT, "清水派出所", "Qingshui Police Station", "沈警官", "010-555-0201"),
    (
        "market",
        _DISTRICT,
        "清水市场监管所",
        "Qingshui Market Supervision Office",
        "韩玉梅",
        "010-555-0202",
    ),
    (
        "traffic",
        _DISTRICT,
        "青山交通大队",
        "Qingshan Traffic Police Brigade",
        "杨帆",
        "010-555-0203",
    ),
    (
        "chengguan",
        _DISTRICT,
        "青山区城管执法局",
        "Qingshan Urban Management Bureau",
        "朱立国",
        "010-555-0204",
    ),
    (
        "ecology",
        _DISTRICT,
        "青山区生态环境局",
        "Qingshan Ecology & Environment Bureau",
        "秦绿洲",
        "010-555-0205",
    ),
    ("water", _DISTRICT, "青山区水务局", "Qingshan Water Authority", "尤清泉", "010-555-0206"),
    (
        "natural-resources",
        _DISTRICT,
        "青山区规划和自然资源局",
        "Qingshan Planning & Natural Resources Bureau",
        "许山林",
        "010-555-0207",
    ),
    (
        "emergency",
        _DISTRICT,
        "青山区应急管理局",
        "Qingshan Emergency Management Bureau",
        "何安平",
        "010-555-0208",
    ),
    (
        "fire-rescue",
        _DISTRICT,
        "清水消防救援站",
        "Qingshui Fire Rescue Station",
        "吕振宇",
        "010-555-0209",
    ),
)

# The responsibility list (清单): category → departments, lead first. Routing summons only these.
RESPONSIBILITIES: dict[str, tuple[tuple[str, bool], ...]] = {
    "illegal-mining": (
        ("natural-resources", True),
        ("police", False),
        ("qs-zhifa", False),
        ("qs-guihua", False),
    ),
    "illegal-construction": (
        ("qs-zhifa", True),
        ("chengguan", False),
        ("natural-resources", False),
        ("qs-guihua", False),
    ),
    "parking": (("traffic", True), ("chengguan", False), ("qs-pingan", False)),
    "garbage": (("chengguan", True), ("qs-guihua", False), ("qs-zhifa", False)),
    "straw-burning": (
        ("ecology", True),
        ("qs-nongye", False),
        ("qs-zhifa", False),
        ("fire-rescue", False),
    ),
    "rental-housing": (("police", True), ("qs-pingan", False), ("qs-zhifa", False)),
    "production-safety": (
        ("emergency", True),
        ("qs-yingji", False),
        ("market", False),
        ("fire-rescue", False),
    ),
    "unlicensed-business": (("market", True), ("chengguan", False), ("qs-zhifa", False)),
    "dispute": (
        ("qs-pingan", True),
        ("police", False),
        ("qs-minzheng", False),
        ("qs-shebao", False),
    ),
    "flood": (("water", True), ("qs-yingji", False), ("emergency", False), ("fire-rescue", False)),
    "fire": (("fire-rescue", True), ("qs-yingji", False), ("emergency", False)),
    "public-order": (("police", True), ("qs-pingan", False)),
    "air-quality": (("ecology", True), ("qs-guihua", False), ("chengguan", False)),
    "gas-leak": (("fire-rescue", True), ("emergency", False), ("qs-yingji", False)),
    # The township's security office runs the video network (雪亮工程); the town's emergency
    # office answers for sensors that watch floods and gas.
    "device-fault": (("qs-pingan", True), ("qs-yingji", False)),
}

# (code, host slug, Chinese, English). A host is a village/community slug or a dedicated grid
# slug; a device placed in a dedicated grid belongs to that grid rather than to the village.
GATEWAYS: tuple[tuple[str, str, str, str], ...] = (
    ("gw-01", "xigou", "西片区物联网关", "West area IoT gateway"),
    ("gw-02", "qingshui", "镇区物联网关", "Town centre IoT gateway"),
    ("gw-03", "longtan", "东片区物联网关", "East area IoT gateway"),
)

# (code, host slug, Chinese, English, Frigate camera name, zones)
CAMERAS: tuple[tuple[str, str, str, str, str, tuple[str, ...]], ...] = (
    (
        "cam-quarry",
        "quarry",
        "石门采石场摄像头",
        "Shimen quarry camera",
        "quarry",
        ("quarry-pit", "haul-road"),
    ),
    (
        "cam-01",
        "donggou",
        "东沟村口摄像头",
        "Donggou village entrance camera",
        "donggou-gate",
        ("village-gate",),
    ),
    (
        "cam-02",
        "qingshui",
        "清水社区广场摄像头",
        "Qingshui Community square camera",
        "qingshui-square",
        ("square",),
    ),
    (
        "cam-03",
        "school",
        "中心小学校门摄像头",
        "Central Primary School gate camera",
        "school-gate",
        ("school-gate", "drop-off"),
    ),
    (
        "cam-04",
        "market",
        "农贸市场入口摄像头",
        "Farmers' market entrance camera",
        "market-entrance",
        ("stalls", "fire-lane"),
    ),
    (
        "cam-05",
        "station",
        "火车站站前广场摄像头",
        "Railway station forecourt camera",
        "station-forecourt",
        ("forecourt", "taxi-rank"),
    ),
    (
        "cam-06",
        "industrial",
        "工业园大门摄像头",
        "Industrial park gate camera",
        "industrial-gate",
        ("gate", "loading-yard"),
    ),
    (
        "cam-07",
        "reservoir",
        "青龙湾水库大坝摄像头",
        "Qinglongwan reservoir dam camera",
        "reservoir-dam",
        ("dam", "spillway"),
    ),
    (
        "cam-08",
        "site",
        "安置房工地大门摄像头",
        "Resettlement housing site gate camera",
        "site-gate",
        ("site-gate", "muck-trucks"),
    ),
    (
        "cam-09",
        "hospital",
        "卫生院急诊门口摄像头",
        "Health centre emergency entrance camera",
        "hospital-entrance",
        ("ambulance-bay",),
    ),
    (
        "cam-10",
        "qiaodong",
        "桥东路口摄像头",
        "Qiaodong crossroads camera",
        "qiaodong-crossroads",
        ("crossroads",),
    ),
    (
        "cam-11",
        "binhe",
        "滨河路河岸摄像头",
        "Binhe Road riverbank camera",
        "binhe-riverbank",
        ("riverbank",),
    ),
    (
        "cam-12",
        "zhaojiayu",
        "赵家峪山口摄像头",
        "Zhaojiayu mountain pass camera",
        "zhaojiayu-pass",
        ("mountain-road",),
    ),
    (
        "cam-13",
        "longtan",
        "龙潭村河道摄像头",
        "Longtan river channel camera",
        "longtan-river",
        ("river-channel",),
    ),
    (
        "cam-14",
        "qianying",
        "前营村农田摄像头",
        "Qianying farmland camera",
        "qianying-fields",
        ("fields",),
    ),
    (
        "cam-15",
        "nantai",
        "南台村口摄像头",
        "Nantai village entrance camera",
        "nantai-gate",
        ("village-gate",),
    ),
    (
        "cam-16",
        "xishan",
        "西山村森林防火摄像头",
        "Xishan forest fire lookout camera",
        "xishan-forest",
        ("forest",),
    ),
    (
        "cam-17",
        "weitang",
        "苇塘村坑塘摄像头",
        "Weitang reed pond camera",
        "weitang-pond",
        ("pond",),
    ),
    (
        "cam-18",
        "huangtupo",
        "黄土坡村沟道摄像头",
        "Huangtupo gully camera",
        "huangtupo-gully",
        ("gully",),
    ),
    (
        "cam-19",
        "beishatan",
        "北沙滩河滩摄像头",
        "Beishatan river beach camera",
        "beishatan-beach",
        ("sand-bank",),
    ),
    (
        "cam-20",
        "zhanqian",
        "站前社区停车场摄像头",
        "Zhanqian parking lot camera",
        "zhanqian-parking",
        ("parking",),
    ),
    (
        "cam-21",
        "zhenzhong",
        "镇政府广场摄像头",
        "Town hall square camera",
        "townhall-square",
        ("square",),
    ),
    (
        "cam-22",
        "wolonggang",
        "卧龙岗村口摄像头",
        "Wolonggang village entrance camera",
        "wolonggang-gate",
        ("village-gate",),
    ),
)

# Per sensor type: the metric its telemetry carries (the names streams.simulate publishes), its
# unit, and alert thresholds in that unit.
SENSOR_PROFILES: dict[str, dict[str, Any]] = {
    "water_level": {
        "metric": "water_level",
        "unit": "m",
        "thresholds": {"warning": 3.5, "critical": 4.2},
    },
    "rainfall": {
        "metric": "rainfall_mm_h",
        "unit": "mm/h",
        "thresholds": {"warning": 20, "critical": 50},
    },
    "smoke": {
        "metric": "smoke_density",
        "unit": "dB/m",
        "thresholds": {"warning": 0.1, "critical": 0.2},
    },
    # 5,000 ppm of methane is 10 % of its lower explosive limit, 12,500 ppm is 25 %.
    "gas": {
        "metric": "methane_ppm",
        "unit": "ppm",
        "thresholds": {"warning": 5000, "critical": 12500},
    },
    # The national standard's "moderately" and "heavily" polluted bands for PM2.5.
    "aqi": {"metric": "pm25", "unit": "µg/m³", "thresholds": {"warning": 115, "critical": 150}},
    "temperature": {
        "metric": "temperature",
        "unit": "°C",
        "thresholds": {"warning": 45, "critical": 60},
    },
}

# (code, sensor type, host slug, Chinese, English, thresholds overriding the profile's)
SENSORS: tuple[tuple[str, str, str, str, str, dict[str, float] | None], ...] = (
    (
        "wl-01",
        "water_level",
        "reservoir",
        "青龙湾水库水位计",
        "Qinglongwan reservoir level gauge",
        # A reservoir gauge reads depth at the dam, against its flood-limit level.
        {"warning": 8.5, "critical": 9.2},
    ),
    ("wl-02", "water_level", "binhe", "滨河桥水位计", "Binhe bridge level gauge", None),
    ("wl-03", "water_level", "longtan", "龙潭河道水位计", "Longtan channel level gauge", None),
    ("wl-04", "water_level", "beishatan", "北沙滩水位计", "Beishatan level gauge", None),
    ("wl-05", "water_level", "nanshatan", "南沙滩水位计", "Nanshatan level gauge", None),
    ("wl-06", "water_level", "weitang", "苇塘排涝站水位计", "Weitang pumping station gauge", None),
    ("wl-07", "water_level", "qiaoxi", "桥西排水泵站水位计", "Qiaoxi pumping station gauge", None),
    ("rain-01", "rainfall", "xishan", "西山村雨量计", "Xishan rain gauge", None),
    ("rain-02", "rainfall", "dongling", "东岭村雨量计", "Dongling rain gauge", None),
    ("rain-03", "rainfall", "qingshui", "镇区雨量计", "Town centre rain gauge", None),
    ("rain-04", "rainfall", "nantai", "南台村雨量计", "Nantai rain gauge", None),
    ("smoke-01", "smoke", "market", "农贸市场烟感", "Farmers' market smoke detector", None),
    ("smoke-02", "smoke", "school", "中心小学烟感", "Central Primary School smoke detector", None),
    ("smoke-03", "smoke", "hospital", "卫生院烟感", "Health centre smoke detector", None),
    ("smoke-04", "smoke", "industrial", "工业园仓库烟感", "Industrial park warehouse smoke", None),
    ("smoke-05", "smoke", "xinhua", "新华社区出租房烟感", "Xinhua rental housing smoke", None),
    ("smoke-06", "smoke", "qiaodong", "桥东出租大院烟感", "Qiaodong rental compound smoke", None),
    ("smoke-07", "smoke", "heping", "和平社区老旧小区烟感", "Heping old estate smoke", None),
    ("smoke-08", "smoke", "huayuan", "花园社区养老驿站烟感", "Huayuan elder care smoke", None),
    ("gas-01", "gas", "market", "农贸市场餐饮区燃气", "Farmers' market food court gas", None),
    ("gas-02", "gas", "zhenzhong", "镇中燃气调压站", "Zhenzhong gas regulator station", None),
    ("gas-03", "gas", "industrial", "工业园燃气管廊", "Industrial park gas pipe gallery", None),
    ("gas-04", "gas", "qiaoxi", "桥西餐饮街燃气", "Qiaoxi restaurant street gas", None),
    ("gas-05", "gas", "school", "中心小学食堂燃气", "Central Primary School canteen gas", None),
    ("gas-06", "gas", "xinhua", "新华社区燃气", "Xinhua Community gas", None),
    ("aqi-01", "aqi", "qingshui", "镇区空气质量站", "Town centre air quality station", None),
    ("aqi-02", "aqi", "industrial", "工业园空气质量站", "Industrial park air quality", None),
    ("aqi-03", "aqi", "site", "安置房工地扬尘监测", "Construction site dust monitor", None),
    ("aqi-04", "aqi", "qianying", "前营村空气质量站", "Qianying air quality station", None),
    ("aqi-05", "aqi", "quarry", "采石场扬尘监测", "Quarry dust monitor", None),
    (
        "temp-01",
        "temperature",
        "industrial",
        "工业园配电室温度",
        "Industrial park switch room",
        None,
    ),
    ("temp-02", "temperature", "station", "火车站箱变温度", "Railway station transformer", None),
    ("temp-03", "temperature", "hospital", "卫生院配电室温度", "Health centre switch room", None),
    ("temp-04", "temperature", "site", "工地临电配电箱温度", "Site temporary power box", None),
)

_ROLE = User.Role
# (username, role, last name, first name, department code). Township scope follows the role;
# the district's duty officer (DISTRICT_ACCOUNTS) watches every township of the district; the
# supervisor and the administrator, with neither township nor district, every district.
ACCOUNTS: tuple[tuple[str, str, str, str, str | None], ...] = (
    ("admin", _ROLE.ADMINISTRATOR, "管理员", "系统", None),
    ("duty", _ROLE.DUTY_OFFICER, "王", "晓明", None),
    ("district", _ROLE.DUTY_OFFICER, "陈", "志远", None),
    ("supervisor", _ROLE.SUPERVISOR, "李", "建华", None),
    ("chengguan", _ROLE.DEPARTMENT_MEMBER, "朱", "立国", "chengguan"),
    ("police", _ROLE.DEPARTMENT_MEMBER, "沈", "海峰", "police"),
    ("grid01", _ROLE.GRID_OFFICER, "赵", "春燕", None),
)
DEMO_USERNAMES: tuple[str, ...] = tuple(account[0] for account in ACCOUNTS)
ADMIN_USERNAMES = frozenset(name for name, role, *_ in ACCOUNTS if role == _ROLE.ADMINISTRATOR)
TOWNSHIP_ROLES = {_ROLE.DUTY_OFFICER, _ROLE.GRID_OFFICER}
DISTRICT_ACCOUNTS = frozenset({"district"})
GRID_OFFICER_GRID = f"{GRID_CODE_PREFIX}-001"

# The demo township's alert rules: the built-in label table as editable rules, the closed
# quarry watched at night, water and gas thresholds, and devices going offline.
# (Chinese name, English name, kind, category, severity, fields)
ALERT_RULES: tuple[tuple[str, str, str, str, str, dict[str, Any]], ...] = (
    (
        "关停矿区夜间作业",
        "Closed quarry at night",
        "camera_label",
        "illegal-mining",
        "critical",
        {
            "labels": ["excavator", "dump_truck"],
            "zones": ["quarry-pit"],
            "min_score": 0.6,
            "active_from": time(22, 0),
            "active_until": time(6, 0),
        },
    ),
    (
        "盗采机械",
        "Mining machinery",
        "camera_label",
        "illegal-mining",
        "major",
        {"labels": ["excavator", "dump_truck"], "min_score": 0.6},
    ),
    ("火情", "Fire or smoke", "camera_label", "fire", "critical", {"labels": ["fire", "smoke"]}),
    (
        "秸秆焚烧",
        "Straw burning",
        "camera_label",
        "straw-burning",
        "major",
        {"labels": ["straw_burning"]},
    ),
    ("打架斗殴", "Fight", "camera_label", "public-order", "critical", {"labels": ["fight"]}),
    ("人员聚集", "Crowd", "camera_label", "public-order", "major", {"labels": ["crowd"]}),
    ("积水内涝", "Flooding", "camera_label", "flood", "critical", {"labels": ["flood"]}),
    (
        "违规停车",
        "Illegal parking",
        "camera_label",
        "parking",
        "minor",
        {"labels": ["illegal_parking"]},
    ),
    ("垃圾", "Garbage", "camera_label", "garbage", "minor", {"labels": ["garbage"]}),
    ("堆物堆料", "Piled debris", "camera_label", "garbage", "warning", {"labels": ["debris"]}),
    (
        "占道经营",
        "Street vendor",
        "camera_label",
        "unlicensed-business",
        "warning",
        {"labels": ["street_vendor"]},
    ),
    (
        "河道水位超警",
        "River above warning level",
        "threshold",
        "flood",
        "major",
        {
            "metric": "water_level",
            "operator": "above",
            "threshold": 3.0,
            "clear_at": 2.6,
            "hold_seconds": 120,
        },
    ),
    (
        "燃气浓度超标",
        "Gas concentration",
        "threshold",
        "gas-leak",
        "critical",
        {
            "metric": "methane_ppm",
            "operator": "above",
            "threshold": 50.0,
            "clear_at": 20.0,
            "hold_seconds": 30,
        },
    ),
    (
        "网关离线",
        "Gateway offline",
        "device_offline",
        "device-fault",
        "major",
        {"device_kinds": ["gateway"]},
    ),
    (
        "摄像头离线",
        "Camera offline",
        "device_offline",
        "device-fault",
        "minor",
        {"device_kinds": ["camera"]},
    ),
)
