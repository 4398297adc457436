"""The synthetic benchmark's catalogue: object kinds and room templates.

Categories follow ScanNet200 names; `raw` are the raw annotation names written into
aggregation.json (mapped back by the label map, as with real ScanNet); `names` are what people call
the object in descriptions. Sizes are (width, depth, height) in metres; depth faces the wall.
"""
from __future__ import annotations

from dataclasses import dataclass

C_WOOD = ("brown", "beige", "white", "black")


@dataclass(frozen=True)
class Kind:
    category: str
    raw: tuple[str, ...]
    names: tuple[str, ...]
    size: tuple[float, float, float]
    colors: tuple[str, ...]
    materials: tuple[str, ...]
    nyu40: str


def _k(category, raw, names, size, colors, materials, nyu40=None):
    return Kind(category, tuple(raw), tuple(names), size, tuple(colors), tuple(materials), nyu40 or category)


KINDS: dict[str, Kind] = {k.category: k for k in [
    _k("chair", ["chair", "dining chair"], ["chair"], (0.48, 0.5, 0.9),
       ["brown", "black", "gray", "white", "red", "blue", "beige"], ["wooden", "metal", "plastic", "leather"]),
    _k("office chair", ["office chair", "desk chair"], ["office chair", "desk chair", "swivel chair", "chair"],
       (0.6, 0.6, 1.0), ["black", "gray", "blue", "red"], ["leather", "fabric", "mesh"], "chair"),
    _k("armchair", ["armchair"], ["armchair", "lounge chair", "chair"], (0.85, 0.85, 0.9),
       ["brown", "beige", "gray", "green", "red", "blue"], ["leather", "fabric"], "chair"),
    _k("table", ["table", "dining table"], ["table", "dining table"], (1.6, 0.9, 0.75),
       C_WOOD, ["wooden", "glass", "metal", "marble"]),
    _k("coffee table", ["coffee table"], ["coffee table", "low table", "table"], (1.1, 0.6, 0.45),
       C_WOOD, ["wooden", "glass"], "table"),
    _k("desk", ["desk"], ["desk", "work desk", "writing desk"], (1.4, 0.7, 0.75),
       ("brown", "white", "black", "gray"), ["wooden", "metal"]),
    _k("bed", ["bed"], ["bed"], (1.6, 2.0, 0.55), ("white", "beige", "blue", "gray", "brown"), ["wooden", "fabric"]),
    _k("nightstand", ["nightstand"], ["nightstand", "night stand", "bedside table"], (0.5, 0.45, 0.55),
       ("brown", "white", "black"), ["wooden"], "night stand"),
    _k("dresser", ["dresser"], ["dresser", "chest of drawers"], (1.2, 0.5, 0.85),
       ("brown", "white", "black"), ["wooden"]),
    _k("wardrobe", ["wardrobe closet", "wardrobe"], ["wardrobe", "closet"], (1.2, 0.6, 2.0),
       ("brown", "white", "beige"), ["wooden"], "cabinet"),
    _k("couch", ["couch", "sofa"], ["couch", "sofa"], (2.0, 0.9, 0.85),
       ("gray", "blue", "brown", "beige", "green", "red", "black"), ["leather", "fabric"], "sofa"),
    _k("tv", ["tv"], ["tv", "television", "tv screen"], (1.1, 0.1, 0.65), ("black",), ["plastic"], "television"),
    _k("tv stand", ["tv stand"], ["tv stand", "media console"], (1.5, 0.45, 0.5), C_WOOD, ["wooden"], "furniture"),
    _k("monitor", ["monitor", "computer monitor"], ["monitor", "computer monitor", "screen"], (0.55, 0.2, 0.4),
       ("black", "gray", "white"), ["plastic"], "otherprop"),
    _k("keyboard", ["keyboard"], ["keyboard"], (0.45, 0.15, 0.03), ("black", "white", "gray"), ["plastic"],
       "otherprop"),
    _k("computer tower", ["computer tower"], ["computer tower", "pc tower", "computer case"], (0.2, 0.45, 0.45),
       ("black", "gray", "white"), ["metal", "plastic"], "otherprop"),
    _k("lamp", ["lamp", "table lamp"], ["lamp", "table lamp"], (0.3, 0.3, 0.5),
       ("white", "black", "beige", "yellow"), ["metal", "ceramic"]),
    _k("floor lamp", ["floor lamp"], ["floor lamp", "standing lamp", "lamp"], (0.4, 0.4, 1.6),
       ("white", "black", "gray"), ["metal"], "lamp"),
    _k("pillow", ["pillow"], ["pillow", "cushion"], (0.5, 0.35, 0.15),
       ("white", "blue", "red", "yellow", "green", "gray", "beige"), ["fabric"]),
    _k("bookshelf", ["bookshelf", "bookcase"], ["bookshelf", "bookcase", "book shelf"], (1.0, 0.35, 1.9),
       C_WOOD, ["wooden", "metal"]),
    _k("cabinet", ["cabinet"], ["cabinet", "cupboard"], (0.8, 0.5, 0.9), ("brown", "white", "gray", "black"),
       ["wooden", "metal"]),
    _k("kitchen cabinets", ["kitchen cabinets"], ["kitchen cabinet", "kitchen cupboard", "cupboard"], (2.0, 0.6, 0.9),
       ("brown", "white", "gray"), ["wooden"], "cabinet"),
    _k("kitchen counter", ["kitchen counter", "counter"], ["counter", "kitchen counter", "countertop"],
       (2.2, 0.65, 0.92), ("white", "gray", "black", "beige"), ["marble", "wooden"], "counter"),
    _k("refrigerator", ["refrigerator", "fridge"], ["refrigerator", "fridge"], (0.8, 0.75, 1.8),
       ("white", "gray", "black"), ["metal"]),
    _k("microwave", ["microwave"], ["microwave", "microwave oven"], (0.5, 0.35, 0.3), ("white", "black", "gray"),
       ["metal"], "otherprop"),
    _k("stove", ["stove", "oven"], ["stove", "oven", "cooker"], (0.75, 0.65, 0.9), ("white", "black", "gray"),
       ["metal"], "otherfurniture"),
    _k("sink", ["sink", "kitchen sink"], ["sink"], (0.6, 0.5, 0.85), ("white", "gray"), ["ceramic", "metal"]),
    _k("toilet", ["toilet"], ["toilet"], (0.4, 0.7, 0.8), ("white",), ["ceramic"]),
    _k("bathtub", ["bathtub", "tub"], ["bathtub", "tub", "bath"], (1.7, 0.75, 0.6), ("white",), ["ceramic"]),
    _k("shower curtain", ["shower curtain"], ["shower curtain"], (1.5, 0.05, 1.8),
       ("white", "blue", "green", "pink"), ["plastic", "fabric"]),
    _k("mirror", ["mirror"], ["mirror"], (0.6, 0.04, 0.9), ("gray",), ["glass"]),
    _k("towel", ["towel"], ["towel"], (0.5, 0.05, 0.7), ("white", "blue", "pink", "yellow", "green"), ["fabric"]),
    _k("trash can", ["trash can", "garbage bin"], ["trash can", "trash bin", "garbage can", "wastebasket", "bin"],
       (0.35, 0.35, 0.5), ("gray", "black", "blue", "white", "green"), ["plastic", "metal"], "otherprop"),
    _k("picture", ["picture", "painting"], ["picture", "painting", "framed picture", "artwork"], (0.8, 0.04, 0.6),
       ("blue", "green", "red", "yellow", "orange", "purple"), ["framed"]),
    _k("whiteboard", ["whiteboard"], ["whiteboard", "white board"], (1.8, 0.04, 1.1), ("white",), ["glossy"]),
    _k("projector screen", ["projector screen"], ["projector screen", "projection screen"], (2.0, 0.05, 1.4),
       ("white",), ["fabric"], "otherprop"),
    _k("plant", ["plant", "potted plant"], ["plant", "potted plant", "houseplant"], (0.45, 0.45, 0.9),
       ("green",), ["potted"], "otherprop"),
    _k("curtain", ["curtain", "curtains"], ["curtain", "drape"], (0.9, 0.08, 2.0),
       ("white", "beige", "blue", "red", "gray", "purple"), ["fabric"]),
    _k("window", ["window"], ["window"], (1.2, 0.1, 1.2), ("white", "gray"), ["glass"]),
    _k("door", ["door"], ["door"], (0.9, 0.1, 2.05), ("brown", "white", "gray"), ["wooden", "metal"]),
    _k("backpack", ["backpack"], ["backpack", "bag", "rucksack"], (0.35, 0.25, 0.45),
       ("black", "blue", "red", "gray", "green"), ["fabric"], "bag"),
    _k("box", ["box", "cardboard box"], ["box", "cardboard box"], (0.5, 0.4, 0.35), ("brown", "white"),
       ["cardboard"], "box"),
    _k("laptop", ["laptop"], ["laptop", "notebook computer"], (0.35, 0.25, 0.03), ("gray", "black"), ["metal"],
       "otherprop"),
    _k("printer", ["printer"], ["printer"], (0.45, 0.4, 0.3), ("white", "black", "gray"), ["plastic"], "otherprop"),
    _k("book", ["book", "books"], ["book"], (0.25, 0.18, 0.04), ("red", "blue", "green", "yellow", "black"),
       ["hardcover"], "books"),
    _k("cup", ["cup", "mug"], ["cup", "mug"], (0.09, 0.09, 0.11), ("white", "red", "blue", "black"), ["ceramic"],
       "otherprop"),
    _k("bottle", ["bottle"], ["bottle"], (0.08, 0.08, 0.28), ("green", "blue", "white", "orange"),
       ["plastic", "glass"], "otherprop"),
    _k("telephone", ["telephone", "phone"], ["telephone", "phone"], (0.2, 0.2, 0.1), ("black", "gray", "white"),
       ["plastic"], "otherprop"),
    _k("clock", ["clock"], ["clock", "wall clock"], (0.3, 0.05, 0.3), ("white", "black", "brown"), ["round"],
       "otherprop"),
    _k("radiator", ["radiator"], ["radiator", "heater"], (1.0, 0.12, 0.6), ("white", "gray"), ["metal"],
       "otherprop"),
    _k("washing machine", ["washing machine"], ["washing machine", "washer"], (0.6, 0.6, 0.85), ("white", "gray"),
       ["metal"], "otherfurniture"),
    _k("clothes dryer", ["clothes dryer", "dryer"], ["dryer", "clothes dryer"], (0.6, 0.6, 0.85),
       ("white", "gray"), ["metal"], "otherfurniture"),
    _k("laundry basket", ["laundry basket"], ["laundry basket", "hamper"], (0.5, 0.35, 0.5),
       ("white", "beige", "blue", "brown"), ["wicker", "plastic"], "basket"),
    _k("shelf", ["shelf", "shelves"], ["shelf", "shelving unit"], (1.0, 0.35, 1.2),
       ("brown", "white", "gray", "black"), ["wooden", "metal"], "shelves"),
    _k("dishwasher", ["dishwasher"], ["dishwasher"], (0.6, 0.6, 0.85), ("white", "gray", "black"), ["metal"],
       "otherfurniture"),
    _k("kettle", ["kettle"], ["kettle", "electric kettle"], (0.2, 0.15, 0.25), ("white", "black", "gray", "red"),
       ["metal", "plastic"], "otherprop"),
    _k("toaster", ["toaster"], ["toaster"], (0.3, 0.2, 0.2), ("gray", "white", "black", "red"), ["metal"],
       "otherprop"),
    _k("bench", ["bench"], ["bench"], (1.4, 0.4, 0.45), ("brown", "black", "white"), ["wooden", "metal"],
       "otherfurniture"),
    _k("stool", ["stool", "bar stool"], ["stool", "bar stool"], (0.4, 0.4, 0.65),
       ("brown", "black", "gray", "red", "white"), ["wooden", "metal"], "chair"),
    _k("file cabinet", ["file cabinet"], ["file cabinet", "filing cabinet"], (0.45, 0.6, 1.0),
       ("gray", "black", "white", "beige"), ["metal"], "cabinet"),
    _k("bulletin board", ["bulletin board"], ["bulletin board", "notice board", "corkboard"], (1.2, 0.03, 0.9),
       ("brown", "beige"), ["cork"], "otherprop"),
    _k("ottoman", ["ottoman"], ["ottoman", "footstool", "pouf"], (0.6, 0.6, 0.42),
       ("brown", "gray", "beige", "blue", "red"), ["leather", "fabric"], "otherfurniture"),
    _k("wall", ["wall"], ["wall"], (1.0, 0.1, 2.7), ("white", "beige", "gray"), ["painted"]),
    _k("floor", ["floor"], ["floor"], (1.0, 1.0, 0.05), ("brown", "gray", "beige"), ["wooden"]),
]}

# A template entry: (category, min count, max count, placement). Placements:
#   wall | floor | corner | mount (on a wall, eye height) | window (beside a window)
#   on:<cat> (resting on an instance of cat) | around:<cat> | front:<cat> | beside:<cat> | above:<cat>
ROOMS: dict[str, dict] = {
    "Bedroom / Hotel": dict(size=((3.2, 5.5), (3.0, 5.0)), objects=[
        ("bed", 1, 2, "wall"), ("nightstand", 1, 2, "beside:bed"), ("lamp", 0, 2, "on:nightstand"),
        ("pillow", 1, 4, "on:bed"), ("dresser", 0, 1, "wall"), ("wardrobe", 0, 1, "wall"),
        ("desk", 0, 1, "wall"), ("office chair", 0, 1, "front:desk"), ("chair", 0, 1, "floor"),
        ("picture", 0, 2, "above:bed"), ("tv", 0, 1, "on:dresser"), ("mirror", 0, 1, "mount"),
        ("trash can", 0, 1, "floor"), ("backpack", 0, 2, "floor"), ("curtain", 0, 2, "window"),
        ("plant", 0, 1, "corner"), ("box", 0, 2, "floor"), ("laundry basket", 0, 1, "corner"),
        ("clock", 0, 1, "mount"), ("radiator", 0, 1, "wall")]),
    "Kitchen": dict(size=((3.0, 5.5), (2.8, 5.0)), objects=[
        ("kitchen cabinets", 1, 3, "wall"), ("kitchen counter", 1, 2, "wall"), ("refrigerator", 1, 1, "wall"),
        ("stove", 1, 1, "wall"), ("sink", 1, 1, "wall"), ("microwave", 0, 1, "on:kitchen counter"),
        ("kettle", 0, 1, "on:kitchen counter"), ("toaster", 0, 1, "on:kitchen counter"),
        ("dishwasher", 0, 1, "wall"), ("table", 0, 1, "floor"), ("chair", 0, 4, "around:table"),
        ("trash can", 1, 2, "floor"), ("stool", 0, 3, "floor"), ("bottle", 0, 3, "on:table"),
        ("cup", 0, 3, "on:table"), ("plant", 0, 1, "corner"), ("clock", 0, 1, "mount"),
        ("picture", 0, 1, "mount"), ("cabinet", 0, 1, "wall")]),
    "Office": dict(size=((3.5, 7.0), (3.0, 6.0)), objects=[
        ("desk", 1, 4, "wall"), ("office chair", 1, 4, "front:desk"), ("monitor", 1, 5, "on:desk"),
        ("keyboard", 1, 4, "on:desk"), ("computer tower", 0, 3, "beside:desk"), ("lamp", 0, 2, "on:desk"),
        ("bookshelf", 0, 2, "wall"), ("file cabinet", 0, 2, "wall"), ("cabinet", 0, 1, "wall"),
        ("trash can", 1, 2, "floor"), ("printer", 0, 1, "on:cabinet"), ("whiteboard", 0, 1, "mount"),
        ("plant", 0, 2, "corner"), ("telephone", 0, 2, "on:desk"), ("laptop", 0, 2, "on:desk"),
        ("box", 0, 3, "floor"), ("backpack", 0, 2, "floor"), ("chair", 0, 2, "floor"),
        ("picture", 0, 2, "mount"), ("clock", 0, 1, "mount"), ("curtain", 0, 1, "window")]),
    "Living room / Lounge": dict(size=((3.8, 7.0), (3.5, 6.0)), objects=[
        ("couch", 1, 2, "wall"), ("armchair", 0, 2, "floor"), ("coffee table", 1, 1, "floor"),
        ("tv stand", 0, 1, "wall"), ("tv", 0, 1, "on:tv stand"), ("pillow", 1, 5, "on:couch"),
        ("floor lamp", 0, 2, "corner"), ("bookshelf", 0, 2, "wall"), ("plant", 0, 2, "corner"),
        ("picture", 0, 3, "above:couch"), ("ottoman", 0, 1, "floor"), ("cabinet", 0, 1, "wall"),
        ("curtain", 0, 2, "window"), ("book", 0, 2, "on:coffee table"), ("cup", 0, 2, "on:coffee table"),
        ("trash can", 0, 1, "floor"), ("clock", 0, 1, "mount"), ("radiator", 0, 1, "wall"), ("box", 0, 2, "floor")]),
    "Bathroom": dict(size=((2.2, 4.0), (2.0, 3.5)), objects=[
        ("toilet", 1, 1, "wall"), ("sink", 1, 2, "wall"), ("mirror", 1, 2, "above:sink"),
        ("bathtub", 0, 1, "corner"), ("shower curtain", 0, 1, "beside:bathtub"), ("towel", 1, 3, "mount"),
        ("trash can", 1, 1, "floor"), ("cabinet", 0, 1, "wall"), ("laundry basket", 0, 1, "floor"),
        ("bottle", 0, 3, "on:sink"), ("shelf", 0, 1, "wall"), ("radiator", 0, 1, "wall")]),
    "Conference Room": dict(size=((4.5, 8.0), (4.0, 7.0)), objects=[
        ("table", 1, 2, "floor"), ("chair", 4, 12, "around:table"), ("office chair", 0, 4, "around:table"),
        ("whiteboard", 0, 1, "mount"), ("projector screen", 0, 1, "mount"), ("tv", 0, 1, "mount"),
        ("telephone", 0, 1, "on:table"), ("laptop", 0, 3, "on:table"), ("cup", 0, 4, "on:table"),
        ("bottle", 0, 4, "on:table"), ("trash can", 0, 2, "floor"), ("plant", 0, 2, "corner"),
        ("cabinet", 0, 1, "wall"), ("clock", 0, 1, "mount"), ("picture", 0, 2, "mount")]),
    "Dining Room": dict(size=((3.5, 6.0), (3.2, 5.5)), objects=[
        ("table", 1, 1, "floor"), ("chair", 2, 8, "around:table"), ("cabinet", 0, 2, "wall"),
        ("picture", 0, 2, "mount"), ("plant", 0, 2, "corner"), ("lamp", 0, 1, "on:cabinet"),
        ("cup", 0, 3, "on:table"), ("bottle", 0, 2, "on:table"), ("curtain", 0, 2, "window"),
        ("bench", 0, 1, "wall"), ("clock", 0, 1, "mount"), ("trash can", 0, 1, "floor")]),
    "Classroom": dict(size=((5.5, 9.0), (5.0, 8.0)), objects=[
        ("desk", 4, 10, "floor"), ("chair", 4, 12, "front:desk"), ("whiteboard", 1, 1, "mount"),
        ("table", 0, 1, "wall"), ("trash can", 1, 2, "floor"), ("bookshelf", 0, 2, "wall"),
        ("clock", 1, 1, "mount"), ("backpack", 0, 4, "floor"), ("projector screen", 0, 1, "mount"),
        ("bulletin board", 0, 2, "mount"), ("monitor", 0, 1, "on:table"), ("laptop", 0, 2, "on:desk")]),
    "Laundry Room": dict(size=((2.5, 4.5), (2.2, 4.0)), objects=[
        ("washing machine", 1, 2, "wall"), ("clothes dryer", 1, 2, "wall"), ("laundry basket", 1, 3, "floor"),
        ("shelf", 0, 2, "wall"), ("cabinet", 0, 2, "wall"), ("sink", 0, 1, "wall"), ("trash can", 0, 1, "floor"),
        ("box", 0, 3, "floor"), ("bottle", 0, 3, "on:washing machine"), ("towel", 0, 2, "mount")]),
    "Bookstore / Library": dict(size=((5.0, 9.0), (4.5, 8.0)), objects=[
        ("bookshelf", 4, 10, "wall"), ("table", 1, 3, "floor"), ("chair", 2, 8, "around:table"),
        ("armchair", 0, 2, "floor"), ("lamp", 0, 2, "on:table"), ("book", 2, 6, "on:table"),
        ("plant", 0, 2, "corner"), ("trash can", 0, 1, "floor"), ("desk", 0, 1, "wall"),
        ("office chair", 0, 1, "front:desk"), ("clock", 0, 1, "mount"), ("picture", 0, 2, "mount")]),
}

# Added when a room comes out with too few objects (rooms have 8-40 objects).
FILLERS = [("trash can", "floor"), ("box", "floor"), ("plant", "corner"), ("backpack", "floor"),
           ("chair", "floor"), ("picture", "mount"), ("clock", "mount"), ("floor lamp", "corner")]

ROOM_WORDS = {
    "Bedroom / Hotel": "bedroom", "Kitchen": "kitchen", "Office": "office", "Living room / Lounge": "living room",
    "Bathroom": "bathroom", "Conference Room": "conference room", "Dining Room": "dining room",
    "Classroom": "classroom", "Laundry Room": "laundry room", "Bookstore / Library": "library",
}
