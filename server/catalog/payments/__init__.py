"""Money through the catalog API: the payment system's signed purchase/refund webhook (webhook, verified
there) and a series' sales for its creator (sales_api).
"""
