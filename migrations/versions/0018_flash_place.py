"""flash_place(): a flash-sale order placed in one round trip (shop.offers.flash_fast)

The function does what `orders.place_order` does for a flash sale's "buy now" of a member the
pricing adjusters have nothing for, in one statement: the sale's and the SKU's checks, the
Idempotency-Key claimed (first, as every placement), the member's count within the limit, the
units taken with SKIP LOCKED, the order and its line; its commit is asynchronous (as every flash placement's). Whatever it does not
handle it hands back untouched ('full': the caller places the order the usual way).

Revision ID: 0018_flash_place
Revises: 0017_draw_keys_per_member
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0018_flash_place'
down_revision = '0017_draw_keys_per_member'
branch_labels = None
depends_on = None


FUNCTION = """
CREATE FUNCTION flash_place(
    p_merchant bigint, p_member bigint, p_offer bigint, p_quantity integer, p_key varchar,
    p_hash varchar, p_order_no varchar, p_address jsonb, p_remark varchar, p_idle boolean,
    p_default_fee bigint, p_default_free_over bigint, p_default_ttl integer, p_now timestamptz
) RETURNS TABLE (
    outcome text, order_id bigint, left_units integer, per_member_limit integer, ends_at timestamptz,
    line_id bigint, sku_id bigint, product_id bigint, title varchar, specs jsonb, image varchar,
    unit_price bigint, goods_total bigint, shipping_fee bigint, expires_at timestamptz,
    created_at timestamptz
) LANGUAGE plpgsql AS $fn$
DECLARE
    sale offers%ROWTYPE;
    sku_active boolean;
    sku_specs jsonb;
    product_status varchar;
    product_title varchar;
    product_images jsonb;
    fee bigint;
    free_over bigint;
    ttl integer;
    has_settings boolean;
    key_id bigint;
    counted_new boolean;
    units bigint[];
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    outcome := 'full';
    IF NOT p_idle THEN
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT o.* INTO sale FROM offers o WHERE o.id = p_offer;
    IF NOT FOUND OR sale.merchant_id <> p_merchant OR sale.kind <> 'flash_sale'
            OR p_now < sale.starts_at OR p_now >= sale.ends_at OR p_quantity > sale.per_member_limit
            OR p_quantity < 1 OR sale.price * p_quantity = 0 THEN
        RETURN NEXT;
        RETURN;
    END IF;
    per_member_limit := sale.per_member_limit;
    ends_at := sale.ends_at;
    SELECT s.active, s.specs, p.status, p.title, p.images, m.merchant_id IS NOT NULL,
           m.shipping_fee, m.free_shipping_over, m.order_ttl_minutes
      INTO sku_active, sku_specs, product_status, product_title, product_images, has_settings,
           fee, free_over, ttl
      FROM skus s JOIN products p ON p.id = s.product_id
      LEFT JOIN merchant_settings m ON m.merchant_id = s.merchant_id
     WHERE s.id = sale.sku_id AND s.merchant_id = p_merchant;
    IF NOT FOUND OR NOT sku_active OR product_status <> 'on_shelf' THEN
        RETURN NEXT;
        RETURN;
    END IF;
    IF NOT has_settings THEN  -- the merchant never changed them: the defaults, as the caller has them
        fee := p_default_fee;
        free_over := p_default_free_over;
        ttl := p_default_ttl;
    END IF;
    -- The key first, as every placement (shop.core.locking): a copy of this request in flight
    -- holds it until it commits (then this one is a retry: 'full', answered the usual way) or
    -- rolls back. From here on, a refusal deletes the key again.
    order_id := nextval(pg_get_serial_sequence('orders', 'id'));
    INSERT INTO idempotency_keys (merchant_id, member_id, key, request_hash, order_id, created_at)
         VALUES (p_merchant, p_member, p_key, p_hash, order_id, p_now)
    ON CONFLICT (merchant_id, member_id, key) DO NOTHING
      RETURNING id INTO key_id;
    IF key_id IS NULL THEN
        order_id := NULL;
        RETURN NEXT;
        RETURN;
    END IF;
    INSERT INTO offer_buyers AS b (offer_id, member_id, merchant_id, quantity)
         VALUES (p_offer, p_member, p_merchant, p_quantity)
    ON CONFLICT (offer_id, member_id) DO UPDATE SET quantity = b.quantity + excluded.quantity
         WHERE b.quantity + excluded.quantity <= sale.per_member_limit
      RETURNING (b.xmax = 0) INTO counted_new;
    IF counted_new IS NULL THEN
        DELETE FROM idempotency_keys k WHERE k.id = key_id;
        order_id := NULL;
        outcome := 'limit';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT array_agg(u.id) INTO units FROM (
        SELECT f.id FROM offer_units f WHERE f.offer_id = p_offer AND f.order_id IS NULL
         ORDER BY f.id LIMIT p_quantity FOR UPDATE SKIP LOCKED
    ) u;
    left_units := coalesce(array_length(units, 1), 0);
    IF left_units < p_quantity THEN
        IF counted_new THEN  -- as if never counted: the row this call made goes
            DELETE FROM offer_buyers b WHERE b.offer_id = p_offer AND b.member_id = p_member;
        ELSE
            UPDATE offer_buyers b SET quantity = b.quantity - p_quantity
             WHERE b.offer_id = p_offer AND b.member_id = p_member;
        END IF;
        DELETE FROM idempotency_keys k WHERE k.id = key_id;
        order_id := NULL;
        outcome := 'sold_out';
        RETURN NEXT;
        RETURN;
    END IF;
    created_at := p_now;
    unit_price := sale.price;
    goods_total := sale.price * p_quantity;
    shipping_fee := CASE WHEN free_over IS NOT NULL AND goods_total >= free_over THEN 0 ELSE fee END;
    expires_at := created_at + make_interval(mins => least(ttl, coalesce(sale.payment_minutes, ttl)));
    sku_id := sale.sku_id;
    product_id := sale.product_id;
    title := product_title;
    specs := sku_specs;
    image := coalesce(product_images ->> 0, '');
    INSERT INTO orders (id, merchant_id, member_id, order_no, kind, status, fulfilment, goods_total,
                        shipping_fee, discount_total, payable_total, address, remark, expires_at,
                        created_at, updated_at)
         VALUES (order_id, p_merchant, p_member, p_order_no, 'goods', 'pending_payment', 'delivery',
                 goods_total, shipping_fee, 0, goods_total + shipping_fee, p_address, p_remark,
                 expires_at, created_at, created_at);
    INSERT INTO order_lines (order_id, merchant_id, order_kind, sku_id, product_id, title, specs,
                             image, unit_price, quantity, goods_amount, discount, paid_amount,
                             offer_kind, offer_id)
         VALUES (order_id, p_merchant, 'goods', sale.sku_id, sale.product_id, product_title,
                 sku_specs, image, sale.price, p_quantity, goods_total, 0, goods_total,
                 'flash_sale', p_offer)
      RETURNING id INTO line_id;
    UPDATE offer_units SET order_id = flash_place.order_id WHERE id = ANY (units);
    outcome := 'placed';
    RETURN NEXT;
END
$fn$
"""


def upgrade():
    op.execute(FUNCTION)


def downgrade():
    op.execute(
        "DROP FUNCTION flash_place(bigint, bigint, bigint, integer, varchar, varchar, varchar, jsonb, varchar, boolean,"
        " bigint, bigint, integer, timestamptz)"
    )
