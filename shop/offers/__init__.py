"""Offers on SKUs: group buys (拼团) and flash sales (秒杀), with the units they set aside."""
