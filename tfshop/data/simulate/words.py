"""The synthetic shop's vocabulary: category tree, attribute words, intents and query templates.

Kept apart from the simulator so that the words (which the text encoder and the text tasks see)
can be read at a glance.
"""

CATEGORY_TREE = {
    "apparel": ("t-shirt", "jeans", "dress", "jacket", "sweater"),
    "shoes": ("sneakers", "boots", "sandals", "loafers"),
    "electronics": ("headphones", "smartphone", "laptop", "smartwatch", "speaker"),
    "home": ("lamp", "sofa", "rug", "curtains", "mug"),
    "beauty": ("lipstick", "moisturizer", "shampoo", "perfume"),
    "sports": ("yoga mat", "dumbbells", "tennis racket", "bicycle helmet"),
    "toys": ("puzzle", "doll", "building blocks", "board game"),
    "grocery": ("coffee", "tea", "chocolate", "olive oil"),
}
BASE_PRICE = {
    "apparel": 35.0,
    "shoes": 70.0,
    "electronics": 250.0,
    "home": 60.0,
    "beauty": 20.0,
    "sports": 40.0,
    "toys": 25.0,
    "grocery": 9.0,
}
MATERIALS = {
    "apparel": ("cotton", "wool", "denim", "silk", "linen"),
    "shoes": ("leather", "suede", "canvas", "mesh"),
    "electronics": ("aluminium", "plastic", "glass"),
    "home": ("oak", "ceramic", "velvet", "bamboo", "steel"),
    "beauty": ("organic", "vegan", "mineral"),
    "sports": ("rubber", "foam", "carbon"),
    "toys": ("wooden", "plush", "plastic"),
    "grocery": ("organic", "fairtrade", "roasted"),
}
COLOURS = ("black", "white", "red", "blue", "green", "grey", "pink", "beige")
STYLES = ("classic", "modern", "sporty", "vintage", "minimalist", "luxury")
BRAND_SYLLABLES = ("nor", "vik", "ala", "ten", "ri", "mo", "kas", "lu", "ver", "zen", "pa", "dro")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
CITY_TIERS = ("1", "2", "3")
GENDERS = ("f", "m", "u")
INTENTS = ("browse", "specific_product", "brand", "deal", "gift")
INTENT_SHARE = (0.35, 0.25, 0.15, 0.15, 0.10)
QUERY_TEMPLATES = {
    "browse": ("{leaf}", "{leaf}s", "{style} {leaf}", "{top} {leaf}"),
    "specific_product": ("{colour} {material} {leaf}", "{material} {leaf} {colour}"),
    "brand": ("{brand} {leaf}", "{brand} {top}", "{leaf} by {brand}"),
    "deal": ("cheap {leaf}", "{leaf} sale", "discount {leaf}", "{leaf} under {budget}"),
    "gift": ("{leaf} gift for her", "{leaf} gift for him", "gift {leaf} for kids"),
}
DESCRIPTION_FILLERS = (
    "Free returns within 30 days.",
    "Ships in 2 days.",
    "A customer favourite this season.",
    "Carefully packed and quality checked.",
    "",
)
