"""Stand-in for a deployment's accepted annotations: (transcript, intent) pairs from templates.

The bench trains the intent classifier on `training_annotations(500)` and measures it on the
labelled clips' machine drafts, whose phrasings are not among these templates
(`make_clips.REQUESTS` was written apart, and `test_corpus_never_holds_a_bench_request` in tests
checks the exact texts).
Slots ({time}, {name}, …) and optional openers/closers vary the words the way real requests do.
"""

from __future__ import annotations

import random
import re

SLOTS: dict[str, list[str]] = {
    "time": [
        "six",
        "seven",
        "eight thirty",
        "nine fifteen",
        "noon",
        "five am",
        "ten pm",
        "quarter to eight",
    ],
    "day": ["monday", "tuesday", "the weekend", "tomorrow", "tonight", "next week", "sunday"],
    "name": ["john", "anna", "my mum", "peter", "the office", "maria", "tom", "my boss"],
    "room": ["kitchen", "bedroom", "living room", "office", "garage", "hall", "dining room"],
    "colour": ["blue", "red", "purple", "warm white", "orange", "pink"],
    "item": ["milk", "eggs", "apples", "coffee beans", "rice", "washing up liquid", "cheese"],
    "artist": ["adele", "the beatles", "taylor swift", "queen", "coldplay", "bob marley"],
    "genre": ["jazz", "pop", "classical music", "hip hop", "country", "reggae"],
    "city": ["london", "paris", "new york", "manchester", "berlin", "glasgow", "madrid"],
    "dish": ["lasagne", "pancakes", "a curry", "risotto", "banana bread", "a stir fry"],
    "food": ["pizza", "a kebab", "thai food", "sushi", "fish and chips", "a burger"],
    "money": ["pounds", "dollars", "euros", "yen", "francs"],
    "company": ["apple", "google", "tesla", "amazon", "netflix", "shell"],
    "thing": ["the eiffel tower", "mount kilimanjaro", "the amazon river", "the moon", "mars"],
    "word": ["ephemeral", "gregarious", "melancholy", "obsolete", "pragmatic"],
    "num": ["twelve", "forty", "seven", "three hundred", "eighteen", "fifty five"],
    "device": ["heater", "fan", "lamp plug", "kettle", "socket"],
    "station": ["radio one", "jazz fm", "the local station", "bbc world service", "capital"],
}

TEMPLATES: dict[str, list[str]] = {
    "alarm_query": [
        "what time is my alarm",
        "have i got an alarm for {day}",
        "which alarms are on",
        "tell me my alarms for {day}",
        "is the {time} alarm set",
    ],
    "alarm_remove": [
        "delete my {time} alarm",
        "cancel the alarm for {day}",
        "get rid of all my alarms",
        "remove the {time} alarm",
        "turn my alarm off for {day}",
    ],
    "alarm_set": [
        "set an alarm for {time}",
        "wake me up at {time} {day}",
        "i need an alarm at {time}",
        "alarm for {time} please",
        "get me up at {time}",
    ],
    "audio_volume_down": [
        "lower the sound",
        "volume down",
        "turn the volume down a bit",
        "it's too loud",
        "reduce the volume please",
    ],
    "audio_volume_mute": [
        "mute the speaker",
        "silence please",
        "turn off the sound",
        "mute yourself",
        "no sound please",
    ],
    "audio_volume_other": [
        "set volume to {num}",
        "what volume are you at",
        "put the volume on {num}",
        "change the volume level",
        "medium volume please",
    ],
    "audio_volume_up": [
        "volume up",
        "make it louder",
        "turn the volume up",
        "i can't hear it",
        "raise the sound",
    ],
    "calendar_query": [
        "what's on {day}",
        "do i have meetings {day}",
        "when am i seeing {name}",
        "check my calendar for {day}",
        "is anything booked {day}",
    ],
    "calendar_remove": [
        "cancel my meeting with {name}",
        "remove {day}'s appointment",
        "delete the event on {day}",
        "clear my schedule {day}",
        "drop the call with {name}",
    ],
    "calendar_set": [
        "remind me to call {name} {day}",
        "schedule a meeting with {name} {day}",
        "add a dentist appointment {day} at {time}",
        "put dinner with {name} in the calendar",
        "remind me at {time} to buy {item}",
    ],
    "cooking_query": [
        "how long to cook {dish}",
        "what temperature for {dish}",
        "can i freeze {dish}",
        "how do i boil rice",
        "what can i use instead of {item}",
    ],
    "cooking_recipe": [
        "recipe for {dish}",
        "how do you make {dish}",
        "what do i need to cook {dish}",
        "find me a recipe with {item}",
        "give me a {dish} recipe",
    ],
    "datetime_convert": [
        "what is {time} here in {city} time",
        "convert {time} to {city} time",
        "what's the time difference with {city}",
        "when it's {time} in {city} what time is it here",
        "time zone of {city}",
    ],
    "datetime_query": [
        "what's the time",
        "what date is it",
        "which day is it today",
        "tell me the time in {city}",
        "what's the date {day}",
    ],
    "email_addcontact": [
        "add {name} to my contacts",
        "save {name}'s email",
        "new contact {name}",
        "store this email address for {name}",
        "put {name} in my contacts",
    ],
    "email_query": [
        "any new emails",
        "did {name} email me",
        "read my emails",
        "what's in my inbox",
        "have i got mail from {name}",
    ],
    "email_querycontact": [
        "what's {name}'s email",
        "give me {name}'s phone number",
        "what is the address of {name}",
        "how do i reach {name}",
        "find {name}'s contact",
    ],
    "email_sendemail": [
        "email {name} about {day}",
        "send {name} an email",
        "reply to {name}'s email",
        "write to {name} saying i'm late",
        "send a mail to {name}",
    ],
    "general_greet": [
        "hi",
        "hello there",
        "good morning to you",
        "how's it going",
        "hey how are you doing",
    ],
    "general_joke": [
        "tell me a joke",
        "know any good jokes",
        "say a funny joke",
        "make me laugh please",
        "tell me a joke about {thing}",
    ],
    "general_quirky": [
        "are you happy",
        "what's your favourite colour",
        "do you dream",
        "can you dance",
        "who made you",
    ],
    "iot_cleaning": [
        "start the vacuum cleaner",
        "vacuum the {room}",
        "run the robot hoover",
        "clean the {room} floor",
        "stop the vacuum",
    ],
    "iot_coffee": [
        "make a coffee",
        "brew coffee",
        "start the coffee maker",
        "i'd like a cappuccino",
        "coffee please",
    ],
    "iot_hue_lightchange": [
        "change the {room} lights to {colour}",
        "make the lights {colour}",
        "set the colour to {colour}",
        "{colour} lights in the {room}",
        "switch the light colour",
    ],
    "iot_hue_lightdim": [
        "dim the {room} lights",
        "lights lower please",
        "make the {room} darker",
        "turn the brightness down",
        "dim the lamp",
    ],
    "iot_hue_lightoff": [
        "turn off the {room} lights",
        "lights off in the {room}",
        "switch the light off",
        "turn the {room} lamp off",
        "no more lights",
    ],
    "iot_hue_lighton": [
        "turn on the {room} lights",
        "lights on in the {room}",
        "switch on the light",
        "turn the {room} lamp on",
        "light up the {room}",
    ],
    "iot_hue_lightup": [
        "brighten the {room}",
        "lights brighter please",
        "make the {room} lights brighter",
        "increase the light",
        "turn the brightness up",
    ],
    "iot_wemo_off": [
        "turn off the {device}",
        "switch the {device} off",
        "power down the {device}",
        "{device} off",
        "stop the {device}",
    ],
    "iot_wemo_on": [
        "turn on the {device}",
        "switch the {device} on",
        "power up the {device}",
        "{device} on",
        "start the {device}",
    ],
    "lists_createoradd": [
        "add {item} to the list",
        "put {item} on my shopping list",
        "start a new list",
        "i need {item} on the list",
        "create a list called {day}",
    ],
    "lists_query": [
        "what's on the list",
        "read the shopping list",
        "is {item} on my list",
        "show my lists",
        "what do i need from the shop",
    ],
    "lists_remove": [
        "remove {item} from the list",
        "take {item} off",
        "delete the shopping list",
        "clear my list",
        "cross {item} off the list",
    ],
    "music_dislikeness": [
        "i don't like this",
        "never play this again",
        "i hate {artist}",
        "this song is awful",
        "skip and don't play it again",
    ],
    "music_likeness": [
        "i love {artist}",
        "add this to my favourites",
        "great song",
        "i like this one",
        "save this track",
    ],
    "music_query": [
        "what's playing",
        "who is this",
        "what's this song called",
        "who sings this song",
        "which artist is this",
    ],
    "music_settings": ["shuffle", "repeat this", "next track", "skip this song", "play on repeat"],
    "news_query": [
        "what's the news",
        "news about {city}",
        "headlines please",
        "latest news on {company}",
        "what's happening in the world",
    ],
    "play_audiobook": [
        "play my audiobook",
        "resume my book",
        "continue the audiobook",
        "play the next chapter",
        "start my book again",
    ],
    "play_game": [
        "let's play a game",
        "play a quiz",
        "start trivia",
        "can we play a game",
        "play hangman",
    ],
    "play_music": [
        "play {artist}",
        "play some {genre}",
        "put on {artist}",
        "play music in the {room}",
        "i want to hear {genre}",
    ],
    "play_podcasts": [
        "play a podcast",
        "next podcast episode",
        "resume my podcast",
        "play the podcast about {thing}",
        "latest episode please",
    ],
    "play_radio": [
        "play {station}",
        "turn the radio on",
        "put on {station}",
        "radio please",
        "tune to {station}",
    ],
    "qa_currency": [
        "how much is {num} {money} in {money}",
        "exchange rate {money} to {money}",
        "convert {money} to {money}",
        "what's the {money} worth",
        "{num} {money} in {money}",
    ],
    "qa_definition": [
        "define {word}",
        "what does {word} mean",
        "meaning of {word}",
        "how do you spell {word}",
        "what is a synonym of {word}",
    ],
    "qa_factoid": [
        "how high is {thing}",
        "how old is {thing}",
        "where is {thing}",
        "who discovered {thing}",
        "tell me about {thing}",
    ],
    "qa_maths": [
        "what is {num} plus {num}",
        "{num} times {num}",
        "what's {num} divided by {num}",
        "square root of {num}",
        "what is {num} minus {num}",
    ],
    "qa_stock": [
        "{company} stock price",
        "how is {company} stock doing",
        "what are {company} shares worth",
        "stock market today",
        "is {company} up today",
    ],
    "recommendation_events": [
        "what's on in {city} {day}",
        "any events {day}",
        "things to do {day}",
        "concerts in {city}",
        "what can i do {day}",
    ],
    "recommendation_locations": [
        "find a restaurant in {city}",
        "where's a good cafe",
        "a bar near me",
        "best {food} near here",
        "shops nearby",
    ],
    "recommendation_movies": [
        "suggest a movie",
        "what film should i see",
        "any good films on",
        "recommend a film for {day}",
        "a movie like the one with {artist}",
    ],
    "social_post": [
        "post on facebook",
        "tweet that i'm in {city}",
        "update my status to busy",
        "complain to {company} on twitter",
        "share my photo",
    ],
    "social_query": [
        "check facebook",
        "any new tweets",
        "what did {name} post",
        "my social notifications",
        "what's new with my friends online",
    ],
    "takeaway_order": [
        "order {food}",
        "get {food} delivered",
        "i want {food} for dinner",
        "order {food} from the usual place",
        "buy me {food} for delivery",
    ],
    "takeaway_query": [
        "where's my {food}",
        "does anyone deliver {food}",
        "how long for my order",
        "is the {food} place open",
        "menu for the {food} place",
    ],
    "transport_query": [
        "next train to {city}",
        "bus times to {city}",
        "when's the train to {city}",
        "is the {time} train late",
        "how do i get to {city} by train",
    ],
    "transport_taxi": [
        "call a taxi",
        "book a cab to {city}",
        "taxi for {time}",
        "get me an uber",
        "i need a taxi home",
    ],
    "transport_ticket": [
        "buy a ticket to {city}",
        "book a train to {city} {day}",
        "flight to {city}",
        "get two tickets to {city}",
        "book a seat on the {time} train",
    ],
    "transport_traffic": [
        "traffic to {city}",
        "is the road busy",
        "how is the traffic",
        "any jams on the way to {city}",
        "will i hit traffic {day}",
    ],
    "weather_query": [
        "weather {day}",
        "will it rain {day}",
        "how cold is it",
        "weather in {city}",
        "is it sunny in {city}",
    ],
    "not_device_directed": [
        "i'm talking to {name}",
        "not you sorry",
        "hang on {name} is calling",
        "what did you say {name}",
        "that was the television",
    ],
    "no_speech": [""],
}

OPENERS = ["", "", "", "please ", "can you ", "hey ", "could you ", "i want to "]
CLOSERS = ["", "", "", " please", " now", " thanks", " for me"]
_SLOT = re.compile(r"\{(\w+)\}")


def training_annotations(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """`n` (transcript, intent) pairs, intents in turn so every one is represented."""
    rng = random.Random(seed)
    intents = sorted(TEMPLATES)
    out: list[tuple[str, str]] = []
    while len(out) < n:
        intent = intents[len(out) % len(intents)]
        template = rng.choice(TEMPLATES[intent])
        text = _SLOT.sub(lambda m: rng.choice(SLOTS[m.group(1)]), template)
        if text and intent not in ("not_device_directed", "general_greet"):
            text = rng.choice(OPENERS) + text + rng.choice(CLOSERS)
        out.append((text, intent))
    return out
