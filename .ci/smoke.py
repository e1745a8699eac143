"""End-to-end smoke test of a running Groupshop (`make run`): browse, order, pay through the fake
provider, ship, refund; the refund needs the RQ worker process, so this proves it runs too. Then the
demo lottery: a new member draws, buys the upgrade of their gift (paid through the fake provider,
issued by the worker's job) and staff redeem the better gift's code.

Usage: python .ci/smoke.py http://127.0.0.1:8000
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
import uuid


def call(base: str, method: str, path: str, body: dict | None = None, token: str = "", **headers: str):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return response.status, json.loads(raw) if raw else None


def main(base: str) -> int:
    _, login = call(base, "POST", "/api/v1/auth/wx-login", {"merchant": "demo", "code": "test:smoke"})
    member = login["token"]
    _, page = call(base, "GET", "/api/v1/products?limit=50", token=member)
    product = next(p for p in page["items"] if p["stock_status"] == "in_stock")
    _, detail = call(base, "GET", f"/api/v1/products/{product['id']}", token=member)
    sku = next(s for s in detail["skus"] if s["stock_status"] == "in_stock")
    body = {
        "items": [{"sku_id": sku["id"], "quantity": 2}],
        "fulfilment": "delivery",
        "address": {"name": "冒烟", "phone": "13800000000", "province": "广东", "city": "深圳", "detail": "1 号"},
    }
    status, order = call(base, "POST", "/api/v1/orders", body, member, Idempotency_Key=f"smoke-{uuid.uuid4()}")
    assert status == 201 and order["status"] == "pending_payment", order
    _, params = call(base, "POST", f"/api/v1/orders/{order['id']}/pay", token=member)
    assert params["package"].startswith("prepay_id="), params
    _, paid = call(base, "POST", f"/api/v1/payments/fake/orders/{order['order_no']}/pay")
    assert paid["status"] == "paid", paid

    _, staff_login = call(
        base,
        "POST",
        "/api/v1/merchant/auth/login",
        {"merchant": "demo", "username": "owner", "password": "demo-owner-pass"},
    )
    staff = staff_login["token"]
    _, shipped = call(
        base,
        "POST",
        f"/api/v1/merchant/orders/{order['id']}/ship",
        {"carrier": "SF", "tracking_no": "SF0000000001"},
        staff,
    )
    assert shipped["status"] == "shipped", shipped
    line = order["lines"][0]
    _, refund = call(
        base,
        "POST",
        f"/api/v1/orders/{order['id']}/refunds",
        {"reason": "smoke", "lines": [{"line_id": line["id"], "quantity": 1}]},
        member,
    )
    call(base, "POST", f"/api/v1/merchant/refunds/{refund['id']}/approve", token=staff)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the worker submits it; the fake provider notifies back
        _, current = call(base, "GET", f"/api/v1/orders/{order['id']}", token=member)
        if current["refunded_total"]:
            break
        time.sleep(0.5)
    assert current["refunded_total"] == refund["amount"] == line["unit_price"], current
    print(
        f"smoke: order {order['order_no']} paid {paid['paid_total']} fen, shipped, "
        f"refunded {current['refunded_total']} fen through the worker"
    )
    return lottery(base, staff)


def lottery(base: str, staff: str) -> int:
    _, login = call(
        base, "POST", "/api/v1/auth/wx-login", {"merchant": "demo", "code": f"test:lucky-{uuid.uuid4().hex[:8]}"}
    )
    member = login["token"]
    _, campaigns = call(base, "GET", "/api/v1/campaigns", token=member)
    campaign = next(c for c in campaigns["items"] if c["state"] == "running" and c["chances"])
    status, drawn = call(
        base, "POST", f"/api/v1/campaigns/{campaign['id']}/draws", token=member, Idempotency_Key=f"smoke-{uuid.uuid4()}"
    )
    assert status == 201 and drawn["won"], drawn
    prize = drawn["prize"]
    _, prize = call(base, "GET", f"/api/v1/prizes/{prize['id']}", token=member)
    offers = [o for o in prize["upgrade_offers"] if not o["sold_out"]]
    if offers:  # the guaranteed gift, almost always: take the best upgrade
        status, upgrade = call(
            base,
            "POST",
            f"/api/v1/prizes/{prize['id']}/upgrade",
            {"offer_id": offers[0]["offer_id"]},
            member,
            Idempotency_Key=f"smoke-{uuid.uuid4()}",
        )
        assert status == 201 and upgrade["kind"] == "prize_upgrade", upgrade
        _, paid = call(base, "POST", f"/api/v1/payments/fake/orders/{upgrade['order_no']}/pay")
        assert paid["status"] == "paid", paid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the worker's job gives the better gift
            _, mine = call(base, "GET", "/api/v1/prizes", token=member)
            better = [p for p in mine["items"] if p["origin"] == "upgrade"]
            if better:
                break
            time.sleep(0.5)
        assert better and better[0]["tier_rank"] == offers[0]["to_tier_rank"], mine
        prize = better[0]
    _, redeemed = call(base, "POST", "/api/v1/merchant/prizes/redeem", {"code": prize["code"]}, staff)
    assert redeemed["status"] == "redeemed", redeemed
    _, numbers = call(base, "GET", f"/api/v1/merchant/campaigns/{campaign['id']}/economics", token=staff)
    print(
        f"smoke: drew {drawn['prize']['tier_name']}, redeemed {prize['tier_name']} ({prize['code']}); "
        f"upgrade revenue {numbers['upgrade_revenue']} fen against prizes costing {numbers['prize_cost']} fen"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1].rstrip("/")))
