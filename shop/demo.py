"""Demo data for a first look: a merchant, one staff account per role, two levels of categories
and about twenty products with SKUs, prices, images and stock, a flash sale and a group buy.
Loaded once; running it again finds the demo merchant and changes nothing.

Feature packages add their own demo data on top (`register_demo`, from their `install()`): each
loader is called after the shop's, with the demo merchant's id, on every `seed-demo`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from shop.catalog import service as catalog
from shop.core.db import db, transaction, utcnow
from shop.identity import pickup_points, staff
from shop.identity.merchants import create_merchant
from shop.identity.models import Merchant
from shop.offers.models import FLASH_SALE, GROUP_BUY, MIN_PAYMENT_MINUTES
from shop.offers.service import create_offer

DEMO_MERCHANT = "demo"
DEMO_APPID = "wxdemo0000000001"
DEMO_STAFF = (
    ("owner", "owner", "demo-owner-pass", "店主"),
    ("operator", "operator", "demo-operator-pass", "运营"),
    ("finance", "finance", "demo-finance-pass", "财务"),
)

_IMG = "https://img.example.com/demo/{}.jpg"

# (top category, sub category, title, [(specs, price, market price, stock)])
_PRODUCTS: list[tuple[str, str, str, list[tuple[dict[str, str], int, int, int]]]] = [
    (
        "生鲜水果",
        "当季水果",
        "赣南脐橙 5斤装",
        [({"规格": "5斤"}, 3990, 5990, 200), ({"规格": "10斤"}, 6990, 9990, 80)],
    ),
    ("生鲜水果", "当季水果", "海南贵妃芒 3斤", [({"规格": "3斤"}, 2990, 3990, 150)]),
    ("生鲜水果", "当季水果", "阳光玫瑰葡萄 2串", [({"规格": "2串"}, 4590, 6800, 60)]),
    ("生鲜水果", "当季水果", "云南蓝莓 4盒", [({"规格": "4盒"}, 5990, 7990, 8)]),
    ("生鲜水果", "肉禽蛋品", "土鸡蛋 30枚", [({"规格": "30枚"}, 3680, 4500, 300)]),
    ("生鲜水果", "肉禽蛋品", "黑猪五花肉 1kg", [({"规格": "1kg"}, 6800, 7800, 40)]),
    ("生鲜水果", "肉禽蛋品", "散养三黄鸡 整只", [({"规格": "约1.5kg"}, 8800, 9800, 0)]),
    (
        "生鲜水果",
        "粮油米面",
        "五常大米 10斤",
        [({"规格": "10斤"}, 6990, 8990, 120), ({"规格": "20斤"}, 12990, 16990, 50)],
    ),
    ("生鲜水果", "粮油米面", "压榨花生油 5L", [({"规格": "5L"}, 8990, 10990, 70)]),
    ("日用百货", "家居清洁", "洗衣凝珠 52颗", [({"香型": "樱花"}, 3990, 5990, 90), ({"香型": "柠檬"}, 3990, 5990, 5)]),
    ("日用百货", "家居清洁", "抽纸 24包", [({"规格": "24包"}, 4290, 5990, 400)]),
    ("日用百货", "家居清洁", "厨房湿巾 80抽×3", [({"规格": "3包"}, 1990, 2990, 220)]),
    ("日用百货", "个护美妆", "氨基酸洗面奶 120g", [({"规格": "120g"}, 5900, 8900, 75)]),
    ("日用百货", "个护美妆", "儿童牙刷 4支装", [({"颜色": "蓝"}, 1990, 2990, 100), ({"颜色": "粉"}, 1990, 2990, 100)]),
    ("日用百货", "个护美妆", "护手霜礼盒", [({"规格": "3支"}, 6900, 9900, 30)]),
    (
        "日用百货",
        "服饰鞋包",
        "纯棉T恤",
        [
            ({"颜色": "白", "尺码": "M"}, 5900, 9900, 40),
            ({"颜色": "白", "尺码": "L"}, 5900, 9900, 35),
            ({"颜色": "黑", "尺码": "M"}, 5900, 9900, 20),
            ({"颜色": "黑", "尺码": "L"}, 5900, 9900, 0),
        ],
    ),
    ("日用百货", "服饰鞋包", "轻便帆布鞋", [({"尺码": "38"}, 12900, 19900, 12), ({"尺码": "40"}, 12900, 19900, 9)]),
    ("日用百货", "服饰鞋包", "帆布托特包", [({"颜色": "米白"}, 4900, 6900, 60)]),
    ("日用百货", "家居清洁", "除螨喷雾 500ml", [({"规格": "500ml"}, 3290, 4990, 110)]),
    ("生鲜水果", "当季水果", "红心火龙果 5斤", [({"规格": "5斤"}, 3590, 4990, 90)]),
]


# A feature package's demo data: called with the demo merchant's id inside a transaction of its
# own; idempotent (it finds its data and changes nothing); True when it created something.
DemoLoader = Callable[[int], bool]
_loaders: list[DemoLoader] = []


def register_demo(loader: DemoLoader) -> None:
    """Have `seed-demo` call `loader` after the shop's own demo data (once per loader: idempotent)."""
    if loader not in _loaders:
        _loaders.append(loader)


def unregister_demo(loader: DemoLoader) -> None:
    if loader in _loaders:
        _loaders.remove(loader)


def load_demo_data() -> bool:
    """Create the demo merchant and its catalog, then let each registered loader add its data;
    False when there was nothing left to create."""
    created = _load_shop_demo()
    with transaction():
        merchant_id = db.session.execute(select(Merchant.id).where(Merchant.code == DEMO_MERCHANT)).scalar_one()
    for loader in list(_loaders):
        with transaction():
            created = bool(loader(merchant_id)) or created
    return created


def _load_shop_demo() -> bool:
    with transaction():
        if db.session.execute(select(Merchant.id).where(Merchant.code == DEMO_MERCHANT)).first():
            return False
        merchant = create_merchant(
            code=DEMO_MERCHANT,
            name="邻里优选（演示）",
            appid=DEMO_APPID,
            secret="",
            owner_username=DEMO_STAFF[0][1],
            owner_password=DEMO_STAFF[0][2],
        )
        for role, username, password, display_name in DEMO_STAFF[1:]:
            staff.create_staff(merchant.id, username=username, password=password, role=role, display_name=display_name)
        tops: dict[str, int] = {}
        subs: dict[tuple[str, str], int] = {}
        skus_by_title: dict[str, int] = {}
        for index, (top, sub, title, skus) in enumerate(_PRODUCTS):
            if top not in tops:
                tops[top] = catalog.create_category(merchant.id, name=top, sort_order=len(tops)).id
            if (top, sub) not in subs:
                subs[(top, sub)] = catalog.create_category(
                    merchant.id, name=sub, parent_id=tops[top], sort_order=len(subs)
                ).id
            product = catalog.create_product(
                merchant.id,
                staff_id=None,
                title=title,
                description=f"{title}，社区团购直供，次日达。",
                images=[_IMG.format(f"p{index + 1:02d}-1"), _IMG.format(f"p{index + 1:02d}-2")],
                category_id=subs[(top, sub)],
                skus=[
                    {
                        "specs": specs,
                        "price": price,
                        "market_price": market,
                        "stock": stock,
                        "code": f"D{index + 1:02d}-{n + 1}",
                    }
                    for n, (specs, price, market, stock) in enumerate(skus)
                ],
            )
            catalog.set_shelf(merchant.id, product.id, on_shelf=True)
            skus_by_title[title] = product.skus[0].id
        _demo_offers(merchant.id, skus_by_title)
        pickup_points.create_pickup_point(
            merchant.id,
            name="幸福里小区团长点",
            address="幸福里小区 3 栋 1 单元 101",
            contact_name="李姐",
            contact_phone="13900000000",
        )
    return True


def _demo_offers(merchant_id: int, skus: dict[str, int]) -> None:
    """A flash sale (秒杀) and a group buy (拼团) running for 30 days from the first start."""
    now = utcnow()
    window = {"starts_at": now - timedelta(minutes=1), "ends_at": now + timedelta(days=30)}
    create_offer(
        merchant_id,
        kind=FLASH_SALE,
        sku_id=skus["厨房湿巾 80抽×3"],
        values={
            "title": "秒杀 厨房湿巾",
            "price": 990,
            "quota": 50,
            "per_member_limit": 2,
            "payment_minutes": MIN_PAYMENT_MINUTES,
            **window,
        },
        staff_id=None,
    )
    create_offer(
        merchant_id,
        kind=GROUP_BUY,
        sku_id=skus["土鸡蛋 30枚"],
        values={
            "title": "3人团 土鸡蛋",
            "price": 2980,
            "leader_price": 2480,
            "group_size": 3,
            "time_limit_hours": 24,
            "on_expiry": "refund",
            "quota": 100,
            "per_member_limit": 2,
            **window,
        },
        staff_id=None,
    )
